//! The payment code as a Code 128 barcode (code set C: two digits per symbol), for laser
//! scanners at tills that read barcodes but not QR codes.

use barcoders::sym::code128::Code128;

/// Why a barcode could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a Code 128 payment code needs an even number of digits, 2 to 40: {0}")]
pub struct BarcodeError(String);

/// The bars (1) and spaces (0) of `digits` in Code 128 set C, start to stop, without
/// quiet zones.
pub fn code128_modules(digits: &str) -> Result<Vec<u8>, BarcodeError> {
    if digits.is_empty()
        || digits.len() > 40
        || !digits.len().is_multiple_of(2)
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(BarcodeError(digits.chars().take(48).collect()));
    }
    let symbol = Code128::new(format!("\u{0106}{digits}")).map_err(|e| BarcodeError(e.to_string()))?;
    Ok(symbol.encode())
}

/// The barcode as SVG, `height` pixels tall, two pixels per module, with quiet zones.
pub fn code128_svg(digits: &str, height: u32) -> Result<String, BarcodeError> {
    let modules = code128_modules(digits)?;
    let quiet = 10;
    let width = (modules.len() + 2 * quiet) * 2;
    let mut bars = String::new();
    for (i, m) in modules.iter().enumerate() {
        if *m == 1 {
            bars.push_str(&format!(r#"<rect x="{}" y="0" width="2" height="{height}"/>"#, (i + quiet) * 2));
        }
    }
    Ok(format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"><rect width="100%" height="100%" fill="white"/><g fill="black">{bars}</g></svg>"#
    ))
}

/// The barcode drawn for a terminal: full blocks for bars, `rows` lines tall.
pub fn code128_terminal(digits: &str, rows: usize) -> Result<String, BarcodeError> {
    let line: String = code128_modules(digits)?.iter().map(|m| if *m == 1 { '█' } else { ' ' }).collect();
    let line = format!("    {line}    \n");
    Ok(line.repeat(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eighteen_digits_make_twelve_symbols_of_code_set_c() {
        let m = code128_modules("661234567890123456").unwrap();
        // Start C, nine digit pairs, check symbol: 11 modules each; stop: 13.
        assert_eq!(m.len(), 11 * 11 + 13);
        assert_eq!(&m[..11], &[1, 1, 0, 1, 0, 0, 1, 1, 1, 0, 0]); // START-C
        assert_eq!(&m[m.len() - 13..], &[1, 1, 0, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1]); // STOP
        assert!(code128_svg("661234567890123456", 80).unwrap().starts_with("<svg"));
    }

    #[test]
    fn refuses_what_is_not_a_digit_string() {
        for bad in ["", "123", "12a4", "<script>"] {
            assert!(code128_modules(bad).is_err(), "{bad}");
        }
    }
}
