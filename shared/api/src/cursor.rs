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

/// A list's `limit` (1 to 100; `default` when absent) and its `cursor` through [`decode`]:
/// anything else is a 400.
pub(crate) fn page_params(
    limit: Option<usize>,
    default: usize,
    cursor: Option<&str>,
    valid: impl Fn(&str) -> bool,
) -> Result<(usize, Option<String>), crate::ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=100).contains(&limit) {
        return Err(crate::ApiError::bad_request(
            "limit must be between 1 and 100",
        ));
    }
    Ok((limit, cursor.map(|c| decode(c, valid)).transpose()?))
}
