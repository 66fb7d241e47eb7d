//! What a person may see of another: a masked name and phone number, as wallets show a
//! transfer's recipient before the sender confirms (enough to recognise a friend, not
//! enough to learn a stranger's name).

/// Masks a name: a Chinese name keeps its last character (`张敏` → `*敏`), a name in
/// words keeps each word's first letter (`Zhang Min` → `Z*** M***`).
pub fn mask_name(name: &str) -> String {
    let name = name.trim();
    if name.contains(' ') {
        return name
            .split_whitespace()
            .map(|w| w.chars().next().map(|c| format!("{c}***")).unwrap_or_default())
            .collect::<Vec<_>>()
            .join(" ");
    }
    match name.chars().last() {
        Some(last) if name.chars().count() > 1 => format!("*{last}"),
        Some(_) => "*".into(),
        None => String::new(),
    }
}

/// Masks a phone number, keeping the first three and last two digits (`138******01`).
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.trim().chars().collect();
    if chars.len() < 6 {
        return "*".repeat(chars.len());
    }
    let (head, tail) = (&chars[..3], &chars[chars.len() - 2..]);
    format!(
        "{}{}{}",
        head.iter().collect::<String>(),
        "*".repeat(chars.len() - 5),
        tail.iter().collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_phones_are_masked() {
        assert_eq!(mask_name("张敏"), "*敏");
        assert_eq!(mask_name("Zhang Min"), "Z*** M***");
        assert_eq!(mask_name("Li"), "*i");
        assert_eq!(mask_name("X"), "*");
        assert_eq!(mask_phone("13800000001"), "138******01");
        assert_eq!(mask_phone("123"), "***");
    }
}
