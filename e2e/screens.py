"""Browser end-to-end tests of Saoma's four screens, in headless Chromium.

Proves, against a real `saoma demo` server, through the pages as a person uses them
(roles and labels, the keyboard, the camera):
  * a cashier takes a payment by scanner input (digits + Enter) of the code the wallet
    page shows, and the product scanned into the basket leaves the stock;
  * a customer pays the till's dynamic QR through the wallet's camera (Chromium's fake
    video capture playing a .y4m of the code), and the till flips to paid by itself;
  * the merchant sees a payment appear live without reloading, refunds its items, and
    the product's stock goes down with the sale and back with the refund;
  * an operator approves a merchant from the review queue;
  * a transfer shows the recipient masked before the PIN, a static sticker is paid from
    a photo of it, and a payment above the password-free limit waits, counting down, at
    the till until the customer confirms it with the PIN in the wallet;
  * every page, signed out and signed in, has only named controls and fits a phone.
Each test saves screenshots (desktop and phone) into SAOMA_E2E_OUT (default
target/e2e-screens); docs/screens.md shows the ones committed under docs/screens.

Run: python3 e2e/screens.py   (needs `pip install playwright==1.65.0`, Debian's chromium,
and a built `saoma`: SAOMA_BIN, default target/debug/saoma). Prints "N passed, N failed"
and exits non-zero when a test fails.
"""

import base64
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse
import urllib.request

from playwright.sync_api import expect, sync_playwright

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("SAOMA_BIN", os.path.join(ROOT, "target", "debug", "saoma"))
OUT = os.environ.get("SAOMA_E2E_OUT", os.path.join(ROOT, "target", "e2e-screens"))
CHROMIUM = os.environ.get("SAOMA_CHROMIUM", "/usr/bin/chromium")
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
TIMEOUT_MS = 15_000
# The labels the helpers sign in by, in each language the pages speak.
LABELS = {
    "en": {"key_id": "Key ID", "secret": "Key secret", "sign_in": "Sign in", "phone": "Phone number", "pin": "PIN",
           "pay": "Pay", "code": "Customer's payment code", "live": "Live: new payments appear here"},
    "zh": {"key_id": "密钥 ID", "secret": "密钥", "sign_in": "登录", "phone": "手机号", "pin": "支付密码",
           "pay": "付款码", "code": "顾客付款码", "live": "实时：新收款将即时显示"},
}


def labels(page):
    return LABELS["zh" if page.evaluate("document.documentElement.lang").startswith("zh") else "en"]


class Demo:
    """A `saoma demo` on a free port, with the logins it prints."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="saoma-e2e-")
        self.proc = subprocess.Popen(
            [BIN, "demo", "--listen", "127.0.0.1:0", "--data-dir", self.dir],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        lines = []
        deadline = time.time() + 120
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops the demo" in line:
                break
        text = "".join(lines)
        try:
            self.url = re.search(r"Saoma demo is running at (\S+)", text).group(1)
            self.till = re.search(r"/pos .*terminal key (\S+) / secret (\S+)", text).groups()
            self.owner = re.search(r"/merchant .*owner key (\S+) / secret (\S+)", text).groups()
            self.phone, self.pin = re.search(r"/wallet .*phone (\S+) PIN (\S+)", text).groups()
            self.admin_token = re.search(r"/console .*token (\S+)", text).group(1)
        except AttributeError:
            self.stop()
            raise RuntimeError("saoma demo did not print its logins:\n" + text)

    def admin(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + self.admin_token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"null")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def shot(page, name):
    os.makedirs(OUT, exist_ok=True)
    page.screenshot(path=os.path.join(OUT, name + ".png"), full_page=True)


def open_page(browser, url, viewport=DESKTOP, locale="en-US"):
    ctx = browser.new_context(viewport=viewport, locale=locale)
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.errors = errors
    return page


def sign_in_with_key(page, key):
    L = labels(page)
    page.get_by_label(L["key_id"], exact=True).fill(key[0])
    page.get_by_label(L["secret"], exact=True).fill(key[1])
    page.get_by_role("button", name=L["sign_in"]).click()


def wallet(browser, demo, viewport=PHONE, locale="en-US"):
    page = open_page(browser, demo.url + "/wallet", viewport, locale)
    L = labels(page)
    page.get_by_label(L["phone"]).fill(demo.phone)
    page.get_by_label(L["pin"]).fill(demo.pin)
    page.get_by_role("button", name=L["sign_in"]).click()
    expect(page.get_by_role("button", name=L["pay"], exact=True)).to_be_visible()
    return page


def till(browser, demo, viewport=DESKTOP, locale="en-US"):
    page = open_page(browser, demo.url + "/pos", viewport, locale)
    L = labels(page)
    sign_in_with_key(page, demo.till)
    expect(page.get_by_label(L["code"])).to_be_focused()
    return page


def back_office(browser, demo, viewport=DESKTOP, locale="en-US"):
    page = open_page(browser, demo.url + "/merchant", viewport, locale)
    L = labels(page)
    sign_in_with_key(page, demo.owner)
    expect(page.get_by_text(L["live"])).to_be_visible()
    return page


def show_code(wallet_page):
    """Taps "Pay" and returns the 18 digits the wallet shows."""
    wallet_page.get_by_role("button", name="Pay", exact=True).click()
    digits = wallet_page.get_by_label("Payment code digits")
    expect(digits).to_have_text(re.compile(r"^\d{4} \d{4} \d{4} \d{4} \d{2}$"))
    return digits.inner_text().replace(" ", "")


def scan(page, text):
    """A keyboard-wedge scanner: digits typed into the focused field, then Enter."""
    field = page.get_by_label("Customer's payment code")
    field.focus()
    page.keyboard.type(text, delay=5)
    page.keyboard.press("Enter")


def stock_of(page, sku):
    r = page.request.get(page.url.split("/merchant")[0].split("/pos")[0] + "/v1/merchant/products?q=" + sku)
    return r.json()["data"][0]["stock"]


def test_cashier_takes_a_payment_from_the_wallet_code(browser, demo):
    w = wallet(browser, demo)
    pos = till(browser, demo)
    office = back_office(browser, demo)
    before = stock_of(office, "BUN-PORK")
    scan(pos, "6901234500042")  # an item's barcode, scanned into the same field
    expect(pos.get_by_role("status")).to_contain_text("Pork bun")
    code = show_code(w)
    shot(w, "wallet-code-phone")
    scan(pos, code)
    expect(pos.locator("#result")).to_contain_text("Paid")
    expect(pos.get_by_role("status")).to_contain_text("Paid")
    shot(pos, "pos-paid-desktop")
    assert stock_of(office, "BUN-PORK") == before - 1, "the bun left the stock with the sale"
    # The signed receipt, as a QR the customer can scan.
    pos.get_by_role("button", name="Receipt QR").click()
    receipt = pos.get_by_role("img", name="The signed receipt as a QR code")
    expect(receipt).to_be_visible()
    assert "payload=ey" in receipt.get_attribute("src"), "the receipt is a JWS"
    pos.get_by_role("button", name="Close").click()
    # The code works once: the wallet puts it away, and the till refuses it again.
    expect(w.get_by_label("Payment code digits")).to_be_hidden()
    pos.get_by_role("button", name="New sale").first.click()
    pos.get_by_label("Amount").fill("3.00")
    scan(pos, code)
    expect(pos.locator("#result")).to_contain_text("This code was already used")
    assert not (w.errors or pos.errors), w.errors + pos.errors


def y4m_of(page, selector, path):
    """Writes a .y4m video of the image at `selector` (what Chromium's fake camera plays)."""
    y = page.evaluate("""(sel) => {
        const img = document.querySelector(sel);
        const c = document.createElement('canvas'); c.width = 640; c.height = 480;
        const g = c.getContext('2d'); g.fillStyle = '#fff'; g.fillRect(0, 0, 640, 480);
        g.imageSmoothingEnabled = false; g.drawImage(img, 150, 70, 340, 340);
        const d = g.getImageData(0, 0, 640, 480).data; const out = new Uint8Array(640 * 480);
        for (let i = 0; i < out.length; i++) out[i] = Math.round(0.299 * d[4*i] + 0.587 * d[4*i+1] + 0.114 * d[4*i+2]);
        let s = ''; for (let i = 0; i < out.length; i += 8192) s += String.fromCharCode.apply(null, out.subarray(i, i + 8192));
        return btoa(s);
    }""", selector)
    luma = base64.b64decode(y)
    chroma = bytes([128]) * (320 * 240)
    with open(path, "wb") as f:
        f.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(20):
            f.write(b"FRAME\n" + luma + chroma + chroma)


def test_customer_pays_a_dynamic_qr_with_the_camera(browser, demo, playwright):
    pos = till(browser, demo)
    pos.get_by_label("Amount").fill("8.80")
    pos.get_by_role("button", name="Show QR").click()
    qr = pos.get_by_role("img", name="The payment QR code for the customer to scan")
    expect(qr).to_be_visible()
    pos.wait_for_function("document.getElementById('qr-img').complete && document.getElementById('qr-img').naturalWidth > 0")
    shot(pos, "pos-dynamic-qr-desktop")
    video = os.path.join(tempfile.mkdtemp(prefix="saoma-cam-"), "qr.y4m")
    y4m_of(pos, "#qr-img", video)
    camera = playwright.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        "--use-file-for-fake-video-capture=" + video])
    try:
        w = wallet(camera, demo)
        w.get_by_role("button", name="Scan", exact=True).click()
        w.get_by_role("button", name="Use the camera").click()
        expect(w.locator("#pay-merchant")).to_have_text("Demo Noodle Bar")
        expect(w.locator("#pay-amount-fixed")).to_contain_text("8.80")
        shot(w, "wallet-scanned-phone")
        w.get_by_role("button", name="Pay", exact=True).last.click()
        expect(w.get_by_role("status")).to_contain_text("Paid")
        expect(pos.locator("#result")).to_contain_text("Paid", timeout=30_000)
        shot(pos, "pos-dynamic-paid-desktop")
        assert not (w.errors or pos.errors), w.errors + pos.errors
    finally:
        camera.close()


def test_merchant_sees_the_payment_live_and_refunds_its_items(browser, demo):
    office = back_office(browser, demo)
    office.get_by_label("Announce payments aloud").check()
    before = stock_of(office, "DUMPLING-12")
    w = wallet(browser, demo)
    pos = till(browser, demo)
    scan(pos, "6901234500028")
    expect(pos.get_by_role("status")).to_contain_text("Dumplings")
    scan(pos, show_code(w))
    expect(pos.locator("#result")).to_contain_text("Paid")
    # It appears in the back office without a reload, and is announced.
    item = office.locator("#feed .item").first
    expect(item).to_contain_text("18.00")
    expect(office.locator("#feed")).to_have_attribute("data-last-spoken", "Received 18.00 yuan")
    assert stock_of(office, "DUMPLING-12") == before - 1, "the sale took one unit"
    shot(office, "merchant-live-desktop")
    office.get_by_role("tab", name="Payments").click()
    row = office.locator("#payments tr").first
    expect(row).to_contain_text("18.00")
    row.get_by_role("button", name=re.compile("^Refund ")).click()
    dialog = office.get_by_role("dialog")
    dialog.get_by_label("Units of Dumplings").fill("1")
    dialog.get_by_label("Units of Dumplings").dispatch_event("input")
    expect(dialog.get_by_label("Amount")).to_have_value("18.00")
    dialog.get_by_label("Reason").fill("cold")
    dialog.get_by_role("button", name="Refund").click()
    expect(office.get_by_role("status")).to_contain_text("Refunded")
    expect(office.locator("#payments tr").first).to_contain_text("Refunded")
    assert stock_of(office, "DUMPLING-12") == before, "the refund put the unit back"
    office.get_by_role("tab", name="Products & stock").click()
    expect(office.locator("tr[data-sku='DUMPLING-12']")).to_contain_text(str(before))
    office.locator("tr[data-sku='DUMPLING-12']").get_by_role("button", name="Stock history of Dumplings").click()
    expect(office.locator("#movements")).to_contain_text("Refund")
    shot(office, "merchant-products-desktop")
    office.get_by_role("tab", name="Reports").click()
    expect(office.locator("#report-kpis")).to_contain_text("Net")
    office.wait_for_timeout(400)
    shot(office, "merchant-reports-desktop")
    # The day's statement downloads as CSV.
    href = office.get_by_role("link", name="Download statement (CSV)").get_attribute("href")
    csv = office.request.get(demo.url + href)
    assert csv.ok and csv.text().startswith("type,id,reference"), csv.text()[:200]
    assert "18.00" in csv.text(), "the sale is on the statement"
    # The owner issues a manager's key (its secret shown once) and revokes it.
    office.get_by_role("tab", name="Settings").click()
    expect(office.locator("#keys .item").first).to_be_visible()
    shot(office, "merchant-settings-desktop")
    office.get_by_label("Role").select_option("manager")
    office.get_by_role("button", name="Issue a key").click()
    expect(office.locator("#key-secret")).to_contain_text("shown once")
    key_id = re.search(r"Key (\S+),", office.locator("#key-secret").inner_text()).group(1)
    office.once("dialog", lambda d: d.accept())
    office.get_by_role("button", name="Revoke key " + key_id).click()
    expect(office.get_by_role("status")).to_contain_text("Key %s revoked" % key_id)
    assert not (office.errors or pos.errors or w.errors), office.errors + pos.errors + w.errors


def test_operator_approves_a_merchant(browser, demo):
    m = demo.admin("POST", "/v1/admin/merchants", {
        "name": "Lotus Bakery", "mcc": "5462", "city": "Suzhou", "country": "CN", "currency": "CNY", "fee_bps": 55})
    console = open_page(browser, demo.url + "/console")
    console.get_by_label("Operator token").fill(demo.admin_token)
    console.get_by_role("button", name="Sign in").click()
    entry = console.locator("li[data-merchant-id='%s']" % m["id"])
    expect(entry).to_contain_text("Awaiting review")
    shot(console, "console-review-desktop")
    console.get_by_role("button", name="Approve Lotus Bakery").click()
    console.get_by_role("dialog").get_by_label("Reason").fill("licence checked")
    console.get_by_role("dialog").get_by_role("button", name="Confirm").click()
    expect(console.get_by_role("status")).to_contain_text("Lotus Bakery approved")
    expect(entry).to_be_hidden()
    assert demo.admin("GET", "/v1/admin/merchants/" + m["id"])["status"] == "active"
    console.get_by_role("tab", name="Books").click()
    expect(console.get_by_text("Balanced: debits equal credits")).to_be_visible()
    console.get_by_role("tab", name="Audit log").click()
    console.get_by_role("button", name="Verify the chain").click()
    expect(console.get_by_role("status")).to_contain_text("Intact")
    shot(console, "console-audit-desktop")
    assert not console.errors, console.errors


def test_every_screen_fits_a_phone_and_a_desktop_in_both_languages(browser, demo):
    for lang, locale in (("en", "en-US"), ("zh", "zh-CN")):
        for size, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            page = open_page(browser, demo.url + "/", viewport, locale)
            expect(page.locator("html")).to_have_attribute("lang", "zh-CN" if lang == "zh" else "en")
            shot(page, "index-%s-%s" % (size, lang))
            for path in ("/pos", "/merchant", "/wallet", "/console"):
                page.goto(demo.url + path)
                # Every control has an accessible name.
                unnamed = page.evaluate("""() => Array.from(document.querySelectorAll('input, select, button, textarea'))
                    .filter(e => !e.closest('[hidden]') && e.type !== 'hidden')
                    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
                    .map(e => e.outerHTML)""")
                assert not unnamed, "%s has unnamed controls: %s" % (path, unnamed)
                overflow = page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
                assert not overflow, "%s is wider than the %s screen" % (path, size)
            assert not page.errors, page.errors
    # Signed in, phone-sized: every control named, nothing wider than the phone.
    console = open_page(browser, demo.url + "/console", PHONE)
    console.get_by_label("Operator token").fill(demo.admin_token)
    console.get_by_role("button", name="Sign in").click()
    expect(console.get_by_role("tab", name="Merchant review")).to_be_visible()
    signed_in = [(till(browser, demo, PHONE, "zh-CN"), "pos-phone-zh"), (back_office(browser, demo, PHONE), "merchant-live-phone"),
                 (wallet(browser, demo, PHONE, "zh-CN"), "wallet-home-phone-zh"), (console, "console-review-phone")]
    for page, name in signed_in:
        page.wait_for_timeout(300)
        assert not unnamed_controls(page), "%s has unnamed controls: %s" % (name, unnamed_controls(page))
        assert not page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1"), name + " is too wide"
        shot(page, name)


def test_customer_pays_the_static_sticker_from_a_photo(browser, demo):
    office = back_office(browser, demo)
    payload = office.request.get(demo.url + "/v1/merchant/qr").json()["qr_payload"]
    png = office.request.get(demo.url + "/v1/qr.png?payload=" + urllib.parse.quote(payload, safe="")).body()
    w = wallet(browser, demo)
    w.get_by_role("button", name="Scan", exact=True).click()
    w.get_by_label("Or pick a photo of the code").set_input_files(
        files=[{"name": "sticker.png", "mimeType": "image/png", "buffer": png}])
    expect(w.locator("#pay-merchant")).to_have_text("Demo Noodle Bar")
    scan_region = w.get_by_role("region", name="Scan a merchant's code")
    scan_region.get_by_label("Amount").fill("6.60")
    scan_region.get_by_role("button", name="Pay").click()
    expect(w.get_by_role("status")).to_contain_text("Paid")
    expect(office.locator("#feed .item").first).to_contain_text("6.60")
    assert not (w.errors or office.errors), w.errors + office.errors


def test_customer_confirms_a_large_payment_with_the_pin(browser, demo):
    customer = demo.admin("GET", "/v1/admin/customers?q=" + demo.phone)["data"][0]["customer"]
    demo.admin("POST", "/v1/admin/customers/%s/topups" % customer["id"],
               {"amount": 200_000, "currency": "CNY", "reference": "e2e-pin-topup"})
    w = wallet(browser, demo)
    pos = till(browser, demo)
    pos.get_by_label("Amount").fill("1500.00")
    scan(pos, show_code(w))
    # Above the password-free limit the till waits, counting down, for the customer.
    expect(pos.locator("#result")).to_contain_text("Customer is confirming")
    expect(pos.locator("#result")).to_contain_text(re.compile(r"\d+ s left"))
    shot(pos, "pos-confirming-desktop")
    confirm = w.get_by_role("region", name="Confirm this payment")
    expect(confirm).to_contain_text("Demo Noodle Bar asks for")
    shot(w, "wallet-confirm-phone")
    confirm.get_by_label("PIN").fill(demo.pin)
    confirm.get_by_role("button", name="Confirm").click()
    expect(pos.locator("#result")).to_contain_text("Paid")
    expect(pos.locator("#result")).to_contain_text("1,500.00")
    assert not (w.errors or pos.errors), w.errors + pos.errors


def unnamed_controls(page):
    return page.evaluate("""() => Array.from(document.querySelectorAll('input, select, button, textarea'))
        .filter(e => e.type !== 'hidden')
        .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
        .map(e => e.outerHTML)""")


def test_customer_transfers_to_a_friend_after_seeing_the_masked_name(browser, demo):
    w = wallet(browser, demo)
    w.get_by_role("button", name="Transfer", exact=True).click()
    send = w.get_by_role("region", name="Send money")
    send.get_by_label("Recipient's phone number").fill("13800000002")
    send.get_by_label("Amount").fill("5.20")
    send.get_by_role("button", name="Continue").click()
    expect(send.locator("#to-who")).to_contain_text("Z*** M***")
    expect(send.locator("#to-who")).to_contain_text("138******02")
    send.get_by_label("PIN").fill(demo.pin)
    send.get_by_role("button", name="Send").click()
    expect(w.get_by_role("status")).to_contain_text("Sent")
    expect(w.locator("#history")).to_contain_text("Zhang Min")
    shot(w, "wallet-transfer-phone")
    assert not w.errors, w.errors


TESTS = [
    test_cashier_takes_a_payment_from_the_wallet_code,
    test_customer_pays_a_dynamic_qr_with_the_camera,
    test_merchant_sees_the_payment_live_and_refunds_its_items,
    test_operator_approves_a_merchant,
    test_customer_transfers_to_a_friend_after_seeing_the_masked_name,
    test_customer_pays_the_static_sticker_from_a_photo,
    test_customer_confirms_a_large_payment_with_the_pin,
    test_every_screen_fits_a_phone_and_a_desktop_in_both_languages,
]


def main():
    only = sys.argv[1:]
    demo = Demo()
    passed = failed = 0
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            for test in TESTS:
                if only and not any(o in test.__name__ for o in only):
                    continue
                started = time.time()
                try:
                    args = (browser, demo, p) if "playwright" in test.__code__.co_varnames[:test.__code__.co_argcount] else (browser, demo)
                    test(*args)
                    passed += 1
                    print("ok    %s (%.1f s)" % (test.__name__, time.time() - started), flush=True)
                except Exception:
                    failed += 1
                    print("FAIL  %s (%.1f s)" % (test.__name__, time.time() - started), flush=True)
                    traceback.print_exc()
                for ctx in list(browser.contexts):
                    ctx.close()
            browser.close()
    finally:
        demo.stop()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed or not passed else 0)


if __name__ == "__main__":
    main()
