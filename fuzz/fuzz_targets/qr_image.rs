//! The image path of the scanner pipeline: whatever PNG `saoma verify-receipt` is handed
//! (a receipt's QR saved as an image, a photo) is read or refused, never a crash, and an
//! image that claims to be huge is refused before it is decoded.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = saoma_api::qr_image::qr_text(data);
});
