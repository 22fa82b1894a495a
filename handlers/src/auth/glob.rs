//! Entity patterns of a token: `*` (any run of characters) and `?` (one character), anchored at
//! both ends, matched character by character. Nothing else is special: no classes, no escapes.

/// Longest accepted pattern, in characters (an entity id is at most 128).
pub const MAX_PATTERN_CHARS: usize = 256;

/// Whether `text` matches `pattern` as a whole.
pub fn matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: the pattern index after it, and the text index it has
    // consumed up to. One backtrack point suffices for `*`-only globs, so matching stays linear-ish.
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                resume = Some((p + 1, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match resume {
                Some((after_star, consumed)) => {
                    p = after_star;
                    t = consumed + 1;
                    resume = Some((after_star, consumed + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

/// Why a pattern from a token is unusable, or `None` when it is fine.
pub fn pattern_problem(pattern: &str) -> Option<String> {
    if pattern.is_empty() {
        return Some("an entity pattern is empty".to_string());
    }
    if pattern.chars().count() > MAX_PATTERN_CHARS {
        return Some(format!(
            "an entity pattern is longer than {MAX_PATTERN_CHARS} characters"
        ));
    }
    if pattern.chars().any(char::is_control) {
        return Some("an entity pattern contains control characters".to_string());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn literal_patterns_match_only_themselves() {
        assert!(matches("user-42", "user-42"));
        assert!(!matches("user-42", "user-420"));
        assert!(!matches("user-42", "user-4"));
        assert!(!matches("user-42", "xuser-42"));
    }

    #[test]
    fn star_matches_any_run_including_none() {
        assert!(matches("order-*", "order-"));
        assert!(matches("order-*", "order-17"));
        assert!(!matches("order-*", "orders-17"));
        assert!(matches("*", ""));
        assert!(matches("*", "anything at all"));
        assert!(matches("a*b*c", "a-b-b-c"));
        assert!(matches("a*b*c", "abc"));
        assert!(!matches("a*b*c", "a-b-b-cd"));
        assert!(matches("*-42", "user-42"));
        assert!(!matches("*-42", "user-421"));
        assert!(matches("**x", "x"));
    }

    #[test]
    fn question_mark_matches_exactly_one_character() {
        assert!(matches("user-??", "user-42"));
        assert!(!matches("user-??", "user-4"));
        assert!(!matches("user-??", "user-421"));
        assert!(matches("z?rich", "zürich"), "one character, not one byte");
    }

    #[test]
    fn other_regex_characters_are_literal() {
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "axb"));
        assert!(matches("[x]", "[x]"));
        assert!(!matches("[x]", "x"));
    }
}
