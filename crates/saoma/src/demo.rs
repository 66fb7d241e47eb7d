//! `saoma demo`: a fresh SQLite database, an approved merchant with a till and keys, two
//! funded customers, and instructions for taking a payment in both QR modes.

use anyhow::Context;
use saoma_api as api;
use saoma_client::{Client, Credentials};

/// Demo customers: phone, name, PIN.
pub const CUSTOMERS: [(&str, &str, &str); 2] =
    [("13800000001", "Li Wei", "123456"), ("13800000002", "Zhang Min", "654321")];

/// Demo products: sku, name, price (fen), stock (None: untracked), barcode, low-stock threshold.
#[allow(clippy::type_complexity)]
const DEMO_PRODUCTS: [(&str, &str, i64, Option<i64>, Option<&str>, Option<i64>); 5] = [
    ("NOODLE-BEEF", "Beef noodles 牛肉面", 2800, Some(40), Some("6901234500011"), Some(5)),
    ("DUMPLING-12", "Dumplings ×12 饺子", 1800, Some(4), Some("6901234500028"), Some(5)),
    ("TEA-JASMINE", "Jasmine tea 茉莉花茶", 1200, Some(60), Some("6901234500035"), Some(10)),
    ("BUN-PORK", "Pork bun 肉包", 450, Some(25), Some("6901234500042"), Some(5)),
    ("SOY-MILK", "Soy milk 豆浆", 500, None, Some("6901234500059"), None),
];

pub async fn run(listen: &str, data_dir: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {data_dir}"))?;
    let dir = std::fs::canonicalize(data_dir)?;
    let db = dir.join("demo.db");
    // The demo till's queue sits beside its configuration (demo.env); a fresh database
    // starts with an empty queue.
    let queue = dir.join("pos-queue.db");
    for file in [&db, &queue] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
        }
    }
    let admin_token = format!("adm_{}", hex::encode(rand::random::<[u8; 16]>()));
    let config = saoma_server::Config {
        admin_token: Some(admin_token.clone()),
        master_key: Some(crate::serve::master_key(&format!("sqlite://{}", db.display()))?),
        // The demo's webhook receivers run on this machine.
        webhook_allow_private: true,
        ..saoma_server::Config::new(&format!("sqlite://{}", db.display()))
    };
    let listener =
        tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let server = saoma_server::start(config, listener).await?;
    let url = server.url();
    let admin = Client::new(&url, Credentials::Admin(admin_token.clone()));
    let m = admin
        .create_merchant(&api::CreateMerchantRequest {
            name: "Demo Noodle Bar".into(),
            mcc: "5812".into(),
            city: "Shanghai".into(),
            country: "CN".into(),
            currency: "CNY".into(),
            fee_bps: 60,
            timezone: Some("Asia/Shanghai".into()),
        })
        .await?;
    let till = admin.create_terminal(&m.id, "Till 1").await?;
    let till_key = admin.create_key(&m.id, Some(&till.id)).await?;
    let merchant_key = admin.create_key(&m.id, None).await?;
    // The merchant applies for review (KYC) with its licence and documents by hash; the
    // operator approves it. Until then it could not take payments.
    let owner = Client::new(
        &url,
        Credentials::Key { key_id: merchant_key.key_id.clone(), secret: merchant_key.secret.clone() },
    );
    owner
        .apply(&api::Application {
            legal_name: "Shanghai Demo Noodle Bar Co., Ltd.".into(),
            licence_number: "91310000MA1DEMO01X".into(),
            owner_name: "Demo Owner".into(),
            owner_id_number: "310101199001011234".into(),
            documents: vec![api::Document {
                kind: "business_licence".into(),
                sha256: "ec9b0ba0ec9767885848f062fd768c54ceda3ce39940543cd9bff1c33fd40c65".into(),
            }],
        })
        .await?;
    admin.approve_merchant(&m.id).await?;
    for (i, (phone, name, pin)) in CUSTOMERS.iter().enumerate() {
        let c = admin.create_customer(phone, name, pin).await?;
        admin.top_up(&c.id, 100_000, "CNY", &format!("demo-topup-{i}")).await?;
    }
    // A few products with stock, so the till and the back office have a catalogue.
    for (sku, name, price, stock, barcode, low) in DEMO_PRODUCTS {
        owner
            .create_product(&api::CreateProductRequest {
                sku: sku.into(),
                name: name.into(),
                price,
                currency: "CNY".into(),
                stock,
                barcode: barcode.map(str::to_string),
                active: None,
                low_stock_threshold: low,
            })
            .await?;
    }
    let qr = owner.merchant_qr().await?;
    let env_file = dir.join("demo.env");
    crate::private_file::write(
        &env_file,
        format!(
            "export SAOMA_URL={url}\nexport SAOMA_KEY_ID={}\nexport SAOMA_KEY_SECRET={}\nexport SAOMA_ADMIN_TOKEN={admin_token}\n\
             export SAOMA_POS_QUEUE={}\nexport SAOMA_PHONE={}\nexport SAOMA_PIN={}\n",
            till_key.key_id,
            till_key.secret,
            shell_quoted(&queue.display().to_string()),
            CUSTOMERS[0].0,
            CUSTOMERS[0].2
        ),
    )?;
    println!("Saoma demo is running at {url}");
    println!(
        "Merchant {} ({}), till {}; customers {} and {} have ¥1000.00 each.",
        m.name, m.id, till.id, CUSTOMERS[0].0, CUSTOMERS[1].0
    );
    println!();
    println!("Cashier scans the customer — in another terminal:");
    println!("  source {}", env_file.display());
    println!("  CODE=$(saoma wallet code | tail -1)          # the customer's 18-digit code");
    println!("  saoma pos charge --code $CODE --amount 1250   # ¥12.50; exit 0 = paid");
    println!();
    println!("Customer scans the merchant's static code (payload below, image at {url}{}):", qr.qr_png_url);
    println!("  {}", qr.qr_payload);
    crate::print_qr(&qr.qr_payload);
    println!("It carries the platform's signature: saoma qr decode '<payload>' checks it.");
    println!();
    println!("The screens (open them in a browser; {url}/ links to all four):");
    println!("  {url}/pos       the till: terminal key {} / secret {}", till_key.key_id, till_key.secret);
    println!(
        "  {url}/wallet    the customer: phone {} PIN {} (or {} PIN {})",
        CUSTOMERS[0].0, CUSTOMERS[0].2, CUSTOMERS[1].0, CUSTOMERS[1].2
    );
    println!(
        "  {url}/merchant  the back office: owner key {} / secret {}",
        merchant_key.key_id, merchant_key.secret
    );
    println!("  {url}/console   the operator: token {admin_token}");
    println!("Credentials are in {} (the admin token too). Ctrl-C stops the demo.", env_file.display());
    tokio::signal::ctrl_c().await?;
    server.stop().await
}

/// A value for a shell's `export`, in single quotes: the data directory may hold spaces.
fn shell_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}
