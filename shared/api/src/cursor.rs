//! List cursors as clients see them: base64url of a store key this API gave out.

/// The position a `next_cursor` names, checked before any store sees it: base64url of a key
/// this API gave out (`valid` says which), at most 512 bytes. Anything else is a 400.
pub(crate) fn decode(
    cursor: &str,
    valid: impl Fn(&str) -> bool,
) -> Result<String, crate::ApiError> {
    use base64::Engine;
    (cursor.len() <= 700)
        .then(|| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(cursor)
                .ok()
        })
        .flatten()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|c| c.len() <= 512 && valid(c))
        .ok_or_else(|| crate::ApiError::bad_request("cursor is not one this API issued"))
}

/// The `next_cursor` a client gets for a store key: what [`decode`] takes back.
pub(crate) fn encode(key: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}
