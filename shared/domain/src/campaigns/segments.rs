//! How many SMS segments a text takes, counted as the network does (3GPP TS 23.038 and
//! 23.040): GSM-7 when every character is in the default alphabet or its extension table
//! (which costs two septets: an escape and the character), else UCS-2 in UTF-16 code units.
//! One segment holds 160 septets or 70 units; a concatenated message 153 or 67 per part, and
//! a part never splits an escape pair or a surrogate pair.
//!
//! Hand-written: the one crate for this (`message_segment_calculator`) is an unmaintained
//! 0.1 port with two releases; the tables below are the standard's, and short.

/// The GSM 03.38 default alphabet (without the escape itself, 0x1B).
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                     ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: each is sent as escape + character.
const EXTENSION: &str = "\u{0C}^{}\\[~]|€";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// A text's encoding, its length in that encoding's units and its segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Segments {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2).
    pub units: usize,
    pub count: usize,
}

/// The units each character takes in GSM-7, or `None` when the text needs UCS-2.
fn gsm7_units(text: &str) -> Option<Vec<usize>> {
    text.chars()
        .map(|c| {
            if BASIC.contains(c) {
                Some(1)
            } else if EXTENSION.contains(c) {
                Some(2)
            } else {
                None
            }
        })
        .collect()
}

/// Packs characters of the given widths into parts of `per_part` units, never splitting one.
fn parts(widths: &[usize], per_part: usize) -> usize {
    let mut parts = 1;
    let mut used = 0;
    for &w in widths {
        if used + w > per_part {
            parts += 1;
            used = 0;
        }
        used += w;
    }
    parts
}

pub fn count(text: &str) -> Segments {
    let (encoding, widths, single, multi) = match gsm7_units(text) {
        Some(widths) => (Encoding::Gsm7, widths, 160, 153),
        None => (
            Encoding::Ucs2,
            text.chars().map(char::len_utf16).collect(),
            70,
            67,
        ),
    };
    let units = widths.iter().sum();
    let count = if units <= single {
        1
    } else {
        parts(&widths, multi)
    };
    Segments {
        encoding,
        units,
        count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(text: &str) -> (Encoding, usize, usize) {
        let s = count(text);
        (s.encoding, s.units, s.count)
    }

    #[test]
    fn gsm7_fits_160_in_one_and_153_per_part() {
        assert_eq!(seg(""), (Encoding::Gsm7, 0, 1));
        assert_eq!(seg(&"a".repeat(160)), (Encoding::Gsm7, 160, 1));
        assert_eq!(seg(&"a".repeat(161)), (Encoding::Gsm7, 161, 2));
        assert_eq!(seg(&"a".repeat(306)), (Encoding::Gsm7, 306, 2));
        assert_eq!(seg(&"a".repeat(307)), (Encoding::Gsm7, 307, 3));
        assert_eq!(seg("Grüße à Öl @ £5 ¿¡"), (Encoding::Gsm7, 18, 1));
        assert_eq!(seg("ú").0, Encoding::Ucs2); // ù is GSM-7, ú is not
    }

    #[test]
    fn extension_characters_take_two_septets_and_never_straddle_parts() {
        assert_eq!(seg("€"), (Encoding::Gsm7, 2, 1));
        assert_eq!(seg(&"€".repeat(80)), (Encoding::Gsm7, 160, 1));
        assert_eq!(seg(&"[".repeat(81)), (Encoding::Gsm7, 162, 2));
        // 152 plain septets then one escape pair: 154 units do not fit one part of 153,
        // and the pair moves whole into the second part.
        let text = format!("{}{}{}", "a".repeat(152), "{", "a".repeat(10));
        assert_eq!(seg(&text), (Encoding::Gsm7, 164, 2));
        let text = format!("{}{}", "a".repeat(152), "}".repeat(77));
        // 152 + 154 = 306 septets would fill two parts exactly, but the first pair cannot
        // split, so 152 | 76 pairs (152) | 1 pair.
        assert_eq!(seg(&text), (Encoding::Gsm7, 306, 3));
    }

    #[test]
    fn anything_else_is_ucs2_in_utf16_units_70_and_67() {
        assert_eq!(seg("ç"), (Encoding::Ucs2, 1, 1)); // lower-case ç is not GSM-7
        assert_eq!(seg(&"Ж".repeat(70)), (Encoding::Ucs2, 70, 1));
        assert_eq!(seg(&"Ж".repeat(71)), (Encoding::Ucs2, 71, 2));
        assert_eq!(seg(&"Ж".repeat(134)), (Encoding::Ucs2, 134, 2));
        assert_eq!(seg(&"Ж".repeat(135)), (Encoding::Ucs2, 135, 3));
        assert_eq!(seg("hi 👋"), (Encoding::Ucs2, 5, 1));
        assert_eq!(seg(&"👋".repeat(35)), (Encoding::Ucs2, 70, 1));
        // 66 units then a surrogate pair: the pair does not split, so 66 | 2 + 2.
        let text = format!("{}{}", "x".repeat(65), "👋".repeat(3)) + "é";
        assert_eq!(seg(&text).1, 72);
        assert_eq!(seg(&text).2, 2);
        let text = format!("{}{}", "Ж".repeat(66), "👋".repeat(34));
        assert_eq!(seg(&text), (Encoding::Ucs2, 134, 3));
    }
}
