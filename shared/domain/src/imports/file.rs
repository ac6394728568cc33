//! Reading an import's file as rows: a CSV's records after its header, or a JSON lines file's
//! non-blank lines. The same file always gives the same rows in the same order, so a job
//! carries on by skipping the rows already counted.

use super::contacts_csv::ContactSheet;
use super::post_rows::PostSheet;
use super::{ImportFormat, ImportKind};

/// What each row of the file is read as.
pub(super) enum Sheet {
    Contacts(ContactSheet),
    Posts(PostSheet),
    PostLines,
}

/// One row, with the line of the file it begins on.
pub(super) struct RawRow<'a> {
    pub line: u64,
    pub data: RowData<'a>,
}

pub(super) enum RowData<'a> {
    Cells(csv::ByteRecord),
    Json(&'a [u8]),
}

/// The rows; an `Err` is the file as a whole being unreadable from there on.
pub(super) type Rows<'a> = Box<dyn Iterator<Item = Result<RawRow<'a>, String>> + Send + 'a>;

/// The sheet and its rows, or why the file as a whole cannot be worked.
pub(super) fn rows(
    kind: ImportKind,
    format: ImportFormat,
    content: &[u8],
) -> Result<(Sheet, Rows<'_>), String> {
    // A byte order mark (as Windows editors write UTF-8) is no part of the first row.
    let content = content.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(content);
    match format {
        ImportFormat::Jsonl if kind == ImportKind::Contacts => {
            Err("contacts are imported from CSV only".into())
        }
        ImportFormat::Jsonl => {
            if content.iter().all(u8::is_ascii_whitespace) {
                return Err("the file is empty".into());
            }
            let lines = content
                .split(|b| *b == b'\n')
                .zip(1u64..)
                .filter(|(text, _)| !text.iter().all(u8::is_ascii_whitespace))
                .map(|(text, line)| {
                    Ok(RawRow {
                        line,
                        data: RowData::Json(text),
                    })
                });
            Ok((Sheet::PostLines, Box::new(lines)))
        }
        ImportFormat::Csv => {
            let reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(content);
            let mut records = reader.into_byte_records();
            let header = match records.next() {
                None => return Err("the file is empty".into()),
                Some(Err(e)) => return Err(format!("not CSV: {e}")),
                Some(Ok(header)) => header,
            };
            let sheet = match kind {
                ImportKind::Contacts => Sheet::Contacts(ContactSheet::from_header(&header)?),
                ImportKind::Posts => Sheet::Posts(PostSheet::from_header(&header)?),
            };
            let rows = records.map(|record| match record {
                Ok(record) => Ok(RawRow {
                    line: record.position().map_or(0, |p| p.line()),
                    data: RowData::Cells(record),
                }),
                Err(e) => Err(format!("not CSV: {e}")),
            });
            Ok((sheet, Box::new(rows)))
        }
    }
}
