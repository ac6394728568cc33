//! Campaign text with `{{field}}` placeholders: parsed once when the campaign is written (a
//! malformed placeholder is refused then), rendered per recipient. A field a recipient lacks
//! (or has empty) takes the campaign's declared fallback, else the recipient is skipped with
//! the field named.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Field(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

fn valid_field(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl Template {
    /// `Err` names the first problem: an unclosed `{{` or a field name that is not
    /// lower-case letters, digits and `_`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or_else(|| {
                format!(
                    "a `{{{{` at byte {} is never closed",
                    text.len() - rest.len() + open
                )
            })?;
            let name = after[..close].trim();
            if !valid_field(name) {
                return Err(format!(
                    "`{{{{{name}}}}}` is not a field: use lower-case letters, digits and _"
                ));
            }
            pieces.push(Piece::Field(name.to_owned()));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Self(pieces))
    }

    /// The fields the text uses.
    pub fn fields(&self) -> BTreeSet<&str> {
        self.0
            .iter()
            .filter_map(|p| match p {
                Piece::Field(f) => Some(f.as_str()),
                Piece::Text(_) => None,
            })
            .collect()
    }

    /// The text for one recipient; `Err(field)` names the first field that has neither a
    /// value nor a fallback.
    pub fn render<'a>(
        &self,
        value: impl Fn(&str) -> Option<&'a str>,
        fallbacks: &BTreeMap<String, String>,
    ) -> Result<String, String> {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(f) => {
                    let v = value(f)
                        .filter(|v| !v.trim().is_empty())
                        .or_else(|| fallbacks.get(f).map(String::as_str))
                        .ok_or_else(|| f.clone())?;
                    out.push_str(v);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fallbacks(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn fields_take_values_then_fallbacks_else_name_the_missing_one() {
        let t = Template::parse("Hi {{first_name}}, {{ code }} ends {{day}}.").unwrap();
        assert_eq!(
            t.fields().into_iter().collect::<Vec<_>>(),
            ["code", "day", "first_name"]
        );
        let values = |f: &str| match f {
            "first_name" => Some("Ada"),
            "code" => Some("SAVE10"),
            "day" => Some("  "),
            _ => None,
        };
        assert_eq!(
            t.render(values, &fallbacks(&[("day", "Sunday")])),
            Ok("Hi Ada, SAVE10 ends Sunday.".to_owned())
        );
        assert_eq!(t.render(values, &fallbacks(&[])), Err("day".to_owned()));
        assert_eq!(
            Template::parse("no fields")
                .unwrap()
                .render(|_| None, &fallbacks(&[])),
            Ok("no fields".to_owned())
        );
    }

    #[test]
    fn malformed_placeholders_are_refused_when_parsed() {
        for bad in [
            "Hi {{first_name",
            "{{}}",
            "{{First}}",
            "{{a-b}}",
            "{{ a b }}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad:?}");
        }
        // A lone brace is text.
        assert!(Template::parse("{x} } {").is_ok());
    }
}
