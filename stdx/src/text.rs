//! Bounded excerpts of untrusted text. Error messages quote values from programs, data files
//! and flags; a 10 MB field or a 100,000-digit literal must not become a message of the same
//! size, so every quote goes through [`excerpt`].

use std::borrow::Cow;

/// `text` whole if it has at most `limit` characters (a few more are tolerated, so a cut
/// always saves something); otherwise its first `limit` characters, an ellipsis, and the
/// full length in characters: `12345678…  (301 characters)`.
pub fn excerpt(text: &str, limit: usize) -> Cow<'_, str> {
    // Counting stops early: a huge text costs `limit` steps, not its length, unless cut.
    const SLACK: usize = 8;
    if text.len() <= limit + SLACK || text.chars().nth(limit + SLACK).is_none() {
        return Cow::Borrowed(text);
    }
    let end = text.char_indices().nth(limit).map_or(text.len(), |(index, _)| index);
    let chars = limit + text[end..].chars().count();
    Cow::Owned(format!("{}… ({chars} characters)", &text[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_are_whole() {
        assert_eq!(excerpt("1.5", 24), "1.5");
        assert_eq!(excerpt(&"x".repeat(30), 24), "x".repeat(30));
        assert!(matches!(excerpt("abc", 1), Cow::Borrowed(_)));
    }

    #[test]
    fn long_texts_keep_their_start_and_length() {
        let long = format!("{}", 1e300);
        assert_eq!(long.len(), 301);
        let short = excerpt(&long, 24);
        assert_eq!(short, format!("{}… (301 characters)", &long[..24]));
    }

    #[test]
    fn cuts_on_character_boundaries() {
        let text = "é".repeat(100);
        let short = excerpt(&text, 10);
        assert_eq!(short, format!("{}… (100 characters)", "é".repeat(10)));
    }
}
