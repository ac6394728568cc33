//! The contacts CSV: a header row naming the columns, then one contact per row. Known columns
//! are [`COLUMNS`] (any case); every other column is a custom field of that name. Empty cells
//! are absent values; `tags` are separated by `;`.

use super::RowProblem;
use crate::contacts::{ConsentInput, NewContact};
use crate::publishing::posts::FieldError;
use std::collections::BTreeSet;

/// The columns with a meaning of their own; `phone` is required.
pub const COLUMNS: [&str; 6] = [
    "phone",
    "region",
    "name",
    "tags",
    "consent",
    "consent_source",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    Phone,
    Region,
    Name,
    Tags,
    Consent,
    ConsentSource,
    Field(String),
}

impl Column {
    fn name(&self) -> &str {
        match self {
            Column::Phone => "phone",
            Column::Region => "region",
            Column::Name => "name",
            Column::Tags => "tags",
            Column::Consent => "consent",
            Column::ConsentSource => "consent_source",
            Column::Field(name) => name,
        }
    }
}

fn field_name_ok(name: &str) -> bool {
    (1..=crate::contacts::MAX_FIELD_NAME).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// What the header says each column holds.
#[derive(Debug, Clone)]
pub struct ContactSheet {
    columns: Vec<Column>,
}

impl ContactSheet {
    /// The header's columns, or every problem with it in one message.
    pub fn from_header(header: &csv::ByteRecord) -> Result<Self, String> {
        let mut problems = Vec::new();
        let mut seen = BTreeSet::new();
        let mut columns = Vec::new();
        for (i, raw) in header.iter().enumerate() {
            let Ok(text) = std::str::from_utf8(raw) else {
                problems.push(format!("column {} of the header is not UTF-8", i + 1));
                continue;
            };
            let name = text.trim_start_matches('\u{feff}').trim();
            let column = match name.to_ascii_lowercase().as_str() {
                "phone" => Column::Phone,
                "region" => Column::Region,
                "name" => Column::Name,
                "tags" => Column::Tags,
                "consent" => Column::Consent,
                "consent_source" => Column::ConsentSource,
                _ if field_name_ok(name) => Column::Field(name.to_owned()),
                _ => {
                    problems.push(format!(
                        "column {} ({name:?}) is neither one of {} nor a field name (1 to {} letters, digits or _)",
                        i + 1,
                        COLUMNS.join(", "),
                        crate::contacts::MAX_FIELD_NAME
                    ));
                    continue;
                }
            };
            if !seen.insert(column.name().to_owned()) {
                problems.push(format!("column {:?} appears twice", column.name()));
            }
            columns.push(column);
        }
        if !columns.contains(&Column::Phone) {
            problems.push("the header has no `phone` column".into());
        }
        match problems.is_empty() {
            true => Ok(Self { columns }),
            false => Err(problems.join("; ")),
        }
    }

    /// The contact a row asks for, or every problem found in its cells. `region` stands for
    /// a row without one; `source` for a consent without its source.
    pub fn contact(
        &self,
        record: &csv::ByteRecord,
        region: Option<&str>,
        source: &str,
    ) -> Result<NewContact, Vec<RowProblem>> {
        let mut problems = Vec::new();
        if record.len() > self.columns.len() {
            problems.push(RowProblem {
                column: "*".into(),
                message: format!(
                    "has {} cells; the header names {}",
                    record.len(),
                    self.columns.len()
                ),
            });
        }
        let mut new = NewContact::default();
        let (mut consent, mut consent_source) = (None, None);
        for (column, raw) in self.columns.iter().zip(record.iter()) {
            let Ok(cell) = std::str::from_utf8(raw).map(str::trim) else {
                problems.push(problem(column.name(), "is not UTF-8"));
                continue;
            };
            if cell.is_empty() {
                continue;
            }
            match column {
                Column::Phone => new.phone = cell.to_owned(),
                Column::Region => new.region = Some(cell.to_owned()),
                Column::Name => new.name = Some(cell.to_owned()),
                Column::Tags => {
                    new.tags = cell
                        .split(';')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned)
                        .collect();
                }
                Column::Consent => match cell.to_ascii_lowercase().as_str() {
                    "opted_in" => consent = Some(true),
                    "opted_out" => consent = Some(false),
                    _ => problems.push(problem("consent", "must be opted_in, opted_out or empty")),
                },
                Column::ConsentSource => consent_source = Some(cell.to_owned()),
                Column::Field(name) => {
                    new.fields.insert(name.clone(), cell.to_owned());
                }
            }
        }
        if new.phone.is_empty() {
            problems.push(problem("phone", "is empty"));
        }
        new.region = new.region.or(region.map(str::to_owned));
        new.consent = consent.map(|opted_in| ConsentInput {
            opted_in,
            source: consent_source.unwrap_or_else(|| source.to_owned()),
        });
        match problems.is_empty() {
            true => Ok(new),
            false => Err(problems),
        }
    }
}

fn problem(column: &str, message: &str) -> RowProblem {
    RowProblem {
        column: column.into(),
        message: message.into(),
    }
}

/// A contact's field error as the column it came from (`tags[2]` is `tags`, `fields.x` is
/// `x`, `consent.source` is `consent_source`).
pub(super) fn row_problem(e: FieldError) -> RowProblem {
    let column = match e.field.as_str() {
        "consent.source" => "consent_source".to_owned(),
        f if f.starts_with("tags") => "tags".to_owned(),
        f => f.strip_prefix("fields.").unwrap_or(f).to_owned(),
    };
    RowProblem {
        column,
        message: e.message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(cells: &[&str]) -> csv::ByteRecord {
        csv::ByteRecord::from(cells.to_vec())
    }

    #[test]
    fn a_header_names_known_columns_in_any_case_and_fields_by_name() {
        let sheet =
            ContactSheet::from_header(&record(&["\u{feff}Phone", " NAME ", "first_name"])).unwrap();
        let new = sheet
            .contact(&record(&["+14155550123", "Ada", "Ada"]), None, "import")
            .unwrap();
        assert_eq!(new.phone, "+14155550123");
        assert_eq!(new.name.as_deref(), Some("Ada"));
        assert_eq!(new.fields["first_name"], "Ada");
        assert!(new.consent.is_none());
    }

    #[test]
    fn every_problem_of_a_header_is_listed() {
        let err = ContactSheet::from_header(&record(&["name", "first name", "tags", "TAGS"]))
            .unwrap_err();
        assert!(err.contains("column 2 (\"first name\")"), "{err}");
        assert!(err.contains("\"tags\" appears twice"), "{err}");
        assert!(err.contains("no `phone` column"), "{err}");
    }

    #[test]
    fn a_row_gives_its_contact_or_every_problem() {
        let sheet =
            ContactSheet::from_header(&record(&["phone", "tags", "consent", "consent_source"]))
                .unwrap();
        let new = sheet
            .contact(
                &record(&["020 7946 0958", "vip; a ;", "OPTED_IN", ""]),
                Some("GB"),
                "import:x",
            )
            .unwrap();
        assert_eq!(new.region.as_deref(), Some("GB"));
        assert_eq!(new.tags, vec!["vip", "a"]);
        let consent = new.consent.unwrap();
        assert!(consent.opted_in);
        assert_eq!(consent.source, "import:x");
        let problems = sheet
            .contact(&record(&["", "", "maybe", "", "extra"]), None, "s")
            .unwrap_err();
        let columns: Vec<_> = problems.iter().map(|p| p.column.as_str()).collect();
        assert_eq!(columns, vec!["*", "consent", "phone"]);
    }
}
