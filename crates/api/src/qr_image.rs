//! Reading the QR code in an image: a receipt's QR saved as a PNG, a photo of a merchant's
//! code. Any bytes are read or refused, never a panic (fuzzed: fuzz/fuzz_targets/qr_image.rs).

/// Why an image gave no text.
#[derive(Debug, thiserror::Error)]
pub enum QrImageError {
    #[error("not a readable image: {0}")]
    Image(#[from] image::ImageError),
    #[error("the image is larger than {MAX_PIXELS} pixels")]
    TooLarge,
    #[error("no readable QR code in the image")]
    NoCode,
}

/// The largest image read: a 4096 × 4096 photo. A bigger one is refused before it is
/// decoded, so a small file that claims to be huge cannot take the memory.
pub const MAX_PIXELS: u64 = 4096 * 4096;

/// The text of the first readable QR code in a PNG image.
pub fn qr_text(png: &[u8]) -> Result<String, QrImageError> {
    let reader = image::ImageReader::with_format(std::io::Cursor::new(png), image::ImageFormat::Png);
    let (w, h) = reader.into_dimensions()?;
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(QrImageError::TooLarge);
    }
    let image = image::load_from_memory_with_format(png, image::ImageFormat::Png)?.to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    for grid in prepared.detect_grids() {
        if let Ok((_, text)) = grid.decode() {
            return Ok(text);
        }
    }
    Err(QrImageError::NoCode)
}
