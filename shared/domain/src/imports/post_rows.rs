//! Posts files. A CSV has a header row naming its columns ([`POST_COLUMNS`], any case, each
//! once; `text` and `accounts` required) and one post per row: `accounts` and `media` are ids
//! separated by `;`, `status` is `draft` or `scheduled`, `schedule` is `next_slot`, empty cells
//! are absent values. A JSON lines file has one `POST /v1/posts` body per line, threads
//! included. Either way a row becomes the [`NewPost`] the API would make of it, and the post
//! service checks it as it checks any post.

use super::RowProblem;
use crate::ids::{AccountId, MediaId};
use crate::publishing::options::TargetOptions;
use crate::publishing::posts::{FollowUps, LocalSchedule, NewPost, Target};
use crate::zone::Dst;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The columns a posts CSV may have.
pub const POST_COLUMNS: [&str; 10] = [
    "text",
    "accounts",
    "scheduled_at",
    "scheduled_local",
    "time_zone",
    "dst",
    "schedule",
    "status",
    "media",
    "first_comment",
];

/// What the header says each column holds (indexes into [`POST_COLUMNS`]).
#[derive(Debug, Clone)]
pub(super) struct PostSheet {
    columns: Vec<usize>,
}

impl PostSheet {
    /// The header's columns, or every problem with it in one message.
    pub(super) fn from_header(header: &csv::ByteRecord) -> Result<Self, String> {
        let mut problems = Vec::new();
        let mut seen = BTreeSet::new();
        let mut columns = Vec::new();
        for (i, raw) in header.iter().enumerate() {
            let name = String::from_utf8_lossy(raw);
            let name = name
                .trim_start_matches('\u{feff}')
                .trim()
                .to_ascii_lowercase();
            let Some(column) = POST_COLUMNS.iter().position(|c| *c == name) else {
                problems.push(format!(
                    "column {} ({name:?}) is not one of {} (threads: import JSON lines)",
                    i + 1,
                    POST_COLUMNS.join(", ")
                ));
                continue;
            };
            if !seen.insert(column) {
                problems.push(format!("column {name:?} appears twice"));
            }
            columns.push(column);
        }
        for required in ["text", "accounts"] {
            if !seen.iter().any(|c| POST_COLUMNS[*c] == required) {
                problems.push(format!("the header has no `{required}` column"));
            }
        }
        match problems.is_empty() {
            true => Ok(Self { columns }),
            false => Err(problems.join("; ")),
        }
    }

    /// The post a row asks for, or every problem found in its cells.
    pub(super) fn post(&self, record: &csv::ByteRecord) -> Result<NewPost, Vec<RowProblem>> {
        let mut problems = Vec::new();
        if record.len() > self.columns.len() {
            problems.push(problem(
                "*",
                format!(
                    "has {} cells; the header names {}",
                    record.len(),
                    self.columns.len()
                ),
            ));
        }
        let mut line = PostLine::default();
        let mut accounts = Vec::new();
        for (cell, &column) in record.iter().zip(&self.columns) {
            let name = POST_COLUMNS[column];
            let Ok(cell) = std::str::from_utf8(cell) else {
                problems.push(problem(name, "is not UTF-8"));
                continue;
            };
            if cell.trim().is_empty() {
                continue;
            }
            let value = Some(cell.to_owned());
            match name {
                "text" => line.text = cell.to_owned(),
                "accounts" => accounts = ids(cell),
                "scheduled_at" => match OffsetDateTime::parse(cell.trim(), &Rfc3339) {
                    Ok(at) => line.scheduled_at = Some(at),
                    Err(_) => problems.push(problem(name, "must be an RFC 3339 time")),
                },
                "scheduled_local" => line.scheduled_local = value.map(|v| v.trim().to_owned()),
                "time_zone" => line.time_zone = value.map(|v| v.trim().to_owned()),
                "dst" => line.dst = value.map(|v| v.trim().to_owned()),
                "schedule" => line.schedule = value.map(|v| v.trim().to_owned()),
                "status" => line.status = value.map(|v| v.trim().to_owned()),
                "media" => line.media = ids(cell),
                _ => line.first_comment = value,
            }
        }
        line.targets = accounts
            .into_iter()
            .map(|account_id| TargetLine {
                account_id,
                text: None,
                media: None,
                options: None,
            })
            .collect();
        let post = line.into_post();
        match (post, problems.is_empty()) {
            (Ok(post), true) => Ok(post),
            (Ok(_), false) => Err(problems),
            (Err(more), _) => {
                problems.extend(more);
                Err(problems)
            }
        }
    }
}

/// One line of a JSON lines file: the post it asks for, or why not (never the line's content).
pub(super) fn json_post(line: &[u8]) -> Result<NewPost, Vec<RowProblem>> {
    match serde_json::from_slice::<PostLine>(line) {
        Ok(line) => line.into_post(),
        Err(e) => Err(vec![problem("*", json_problem(&e))]),
    }
}

/// What serde says is wrong, never a value of the line (a post's text is the tenant's): the
/// field a message names, or what was expected there, and the column.
fn json_problem(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let column = e.column();
    if e.classify() != Category::Data {
        return format!("is not a JSON object (column {column})");
    }
    let said = e.to_string();
    let said = said.split(" at line ").next().unwrap_or_default();
    let named = |prefix: &str| {
        said.strip_prefix(prefix)
            .and_then(|rest| rest.split('`').nth(1))
            .map(|name| name.chars().take(40).collect::<String>())
    };
    let expected = said
        .rsplit_once(", expected ")
        .map(|(_, what)| what.to_owned());
    let why = if let Some(field) = named("missing field ") {
        format!("has no `{field}`")
    } else if let Some(field) = named("unknown field ") {
        format!("has a field POST /v1/posts does not take: `{field}`")
    } else if let (true, Some(what)) = (said.starts_with("invalid"), expected) {
        format!("has a value that is not {what}")
    } else {
        "is not a post as POST /v1/posts takes it".to_owned()
    };
    format!("{why} (column {column})")
}

/// A target's options as `POST /v1/posts` takes them: a field the options do not have (which
/// the stored type would ignore) is refused, as the API refuses it.
fn strict_options(value: serde_json::Value) -> Result<TargetOptions, String> {
    /// Absent and null read alike: what was given is compared with what was understood.
    fn without_nulls(v: &mut serde_json::Value) {
        if let serde_json::Value::Object(map) = v {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(without_nulls);
        }
    }
    let options: TargetOptions = serde_json::from_value(value.clone())
        .map_err(|_| "are not options as POST /v1/posts takes them".to_owned())?;
    let mut known = serde_json::to_value(&options).unwrap_or_default();
    let mut given = value;
    without_nulls(&mut given);
    without_nulls(&mut known);
    match given == known {
        true => Ok(options),
        false => Err("have a field POST /v1/posts does not take".into()),
    }
}

fn problem(column: &str, message: impl Into<String>) -> RowProblem {
    RowProblem {
        column: column.to_owned(),
        message: message.into(),
    }
}

fn ids(cell: &str) -> Vec<String> {
    cell.split([';', ',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A post as a JSON line (the same fields as `POST /v1/posts`) or a CSV row gives it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PostLine {
    text: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    scheduled_at: Option<OffsetDateTime>,
    targets: Vec<TargetLine>,
    #[serde(default)]
    media: Vec<String>,
    #[serde(default)]
    thread: Vec<String>,
    #[serde(default)]
    alt_text: BTreeMap<String, String>,
    first_comment: Option<String>,
    status: Option<String>,
    scheduled_local: Option<String>,
    time_zone: Option<String>,
    dst: Option<String>,
    schedule: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetLine {
    account_id: String,
    text: Option<String>,
    media: Option<Vec<String>>,
    /// Kept as JSON until checked: the stored type ignores fields it does not know, a row
    /// may not.
    options: Option<serde_json::Value>,
}

impl PostLine {
    /// The post, or every problem of the fields that are not the post service's to check.
    fn into_post(self) -> Result<NewPost, Vec<RowProblem>> {
        let mut problems = Vec::new();
        let mut targets = Vec::with_capacity(self.targets.len());
        for (i, t) in self.targets.into_iter().enumerate() {
            let options = match t.options.map(strict_options).transpose() {
                Ok(options) => options.unwrap_or_default(),
                Err(why) => {
                    problems.push(problem(&format!("targets[{i}].options"), why));
                    TargetOptions::default()
                }
            };
            targets.push(Target {
                account_id: AccountId(t.account_id),
                text: t.text,
                media: t.media.map(|m| m.into_iter().map(MediaId).collect()),
                options,
            });
        }
        let draft = match self.status.as_deref() {
            None | Some("scheduled") => false,
            Some("draft") => true,
            Some(_) => {
                problems.push(problem("status", "must be draft or scheduled"));
                false
            }
        };
        let next_slot = match self.schedule.as_deref() {
            None => false,
            Some("next_slot") => true,
            Some(_) => {
                problems.push(problem("schedule", "must be next_slot"));
                false
            }
        };
        let dst = match self.dst.as_deref() {
            None => None,
            Some("earlier") => Some(Dst::Earlier),
            Some("later") => Some(Dst::Later),
            Some(_) => {
                problems.push(problem("dst", "must be earlier or later"));
                None
            }
        };
        let local =
            LocalSchedule::from_request(self.scheduled_local.as_deref(), self.time_zone, dst)
                .unwrap_or_else(|e| {
                    problems.extend(e.into_iter().map(|e| problem(&e.field, e.message)));
                    None
                });
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(NewPost {
            text: self.text,
            scheduled_at: self.scheduled_at,
            targets,
            media: self.media.into_iter().map(MediaId).collect(),
            follow_ups: FollowUps {
                thread: self.thread,
                first_comment: self.first_comment,
            },
            draft,
            local,
            next_slot,
            alt_text: self
                .alt_text
                .into_iter()
                .map(|(id, text)| (MediaId(id), text))
                .collect(),
        })
    }
}
