//! Instagram's caption rules, from Meta's IG Media reference (`caption`): at most 2,200
//! characters, 30 hashtags and 20 @ tags. Meta does not define a character either; like
//! Facebook's, it is counted in UTF-16 code units. A first comment is held to the same
//! rules (Instagram's comment box takes what a caption takes).

/// The most characters a caption may have.
pub const MAX_LENGTH: usize = 2_200;
/// The most hashtags a caption may carry.
pub const MAX_HASHTAGS: usize = 30;
/// The most accounts a caption may tag with `@`.
pub const MAX_MENTIONS: usize = 20;

/// How many hashtags `text` carries: a `#` that starts a word (the text's start, or after a
/// character that is neither a letter, a digit nor `_`, `&`), followed by at least one letter,
/// digit or `_`.
pub fn hashtags(text: &str) -> usize {
    tags(text, '#', |c| c.is_alphanumeric() || c == '_')
}

/// How many `@` tags `text` carries: an `@` that starts a word followed by a username's first
/// character (a letter, digit, `.` or `_`, as Instagram usernames are made of). An address
/// (`ada@example.com`) does not start a word there, so it is no tag.
pub fn mentions(text: &str) -> usize {
    tags(text, '@', |c| {
        c.is_ascii_alphanumeric() || c == '.' || c == '_'
    })
}

fn tags(text: &str, sign: char, part: impl Fn(char) -> bool) -> usize {
    let mut count = 0;
    let mut before: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let starts_word =
            before.is_none_or(|b| !(b.is_alphanumeric() || b == '_' || b == '&' || b == sign));
        if c == sign && starts_word && chars.peek().is_some_and(|&n| part(n)) {
            count += 1;
        }
        before = Some(c);
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashtags_start_a_word() {
        assert_eq!(hashtags("#a #b_c #12 x#y # #"), 3);
        assert_eq!(hashtags("##double"), 0);
        assert_eq!(hashtags("&#39; is an entity, #été a tag"), 1);
        assert_eq!(hashtags(&"#t ".repeat(31)), 31);
    }

    #[test]
    fn mentions_are_usernames_after_an_at_sign() {
        assert_eq!(mentions("@ada and @bob.smith, @_x"), 3);
        assert_eq!(mentions("write to ada@example.com or @ alone"), 0);
    }
}
