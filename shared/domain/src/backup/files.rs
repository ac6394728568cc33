//! The backup directory on disk: files only the owner can read (they hold personal data and,
//! with secrets, the keys to every token), written with their SHA-256 on the way.

use super::BackupError;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Makes `dir` (owner only) or takes it if it exists and is empty: a backup never mixes with
/// another one's files.
pub fn fresh_dir(dir: &Path) -> Result<(), BackupError> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(|e| BackupError::io(dir, &e))?;
        if entries.next().is_some() {
            return Err(BackupError::Refused(format!(
                "{} is not empty: write each backup to a new directory",
                dir.display()
            )));
        }
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| BackupError::io(dir, &e))
}

/// A new file readable and writable by its owner only (0600), refusing to replace one.
fn private_file(path: &Path) -> Result<File, BackupError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| BackupError::io(path, &e))
}

/// Lines written to a private file, counted and hashed as they go.
pub struct LineWriter {
    path: PathBuf,
    out: BufWriter<File>,
    hash: Sha256,
    pub lines: u64,
}

impl LineWriter {
    pub fn create(path: PathBuf) -> Result<Self, BackupError> {
        let out = BufWriter::new(private_file(&path)?);
        Ok(Self {
            path,
            out,
            hash: Sha256::new(),
            lines: 0,
        })
    }

    pub fn line(&mut self, text: &str) -> Result<(), BackupError> {
        for part in [text.as_bytes(), b"\n"] {
            self.hash.update(part);
            self.out
                .write_all(part)
                .map_err(|e| BackupError::io(&self.path, &e))?;
        }
        self.lines += 1;
        Ok(())
    }

    /// Flushes to disk; answers the line count and the file's SHA-256 (hex).
    pub fn finish(mut self) -> Result<(u64, String), BackupError> {
        self.out
            .flush()
            .and_then(|()| self.out.get_ref().sync_all())
            .map_err(|e| BackupError::io(&self.path, &e))?;
        Ok((self.lines, hex::encode(self.hash.finalize())))
    }
}

/// A whole private file at once (the manifest, the secrets).
pub fn write_private(path: &Path, text: &str) -> Result<String, BackupError> {
    let mut writer = LineWriter::create(path.to_path_buf())?;
    writer.line(text)?;
    Ok(writer.finish()?.1)
}

/// A file read line by line, hashed as it goes.
pub struct Lines {
    path: PathBuf,
    reader: BufReader<File>,
    hash: Sha256,
    number: u64,
    line: Vec<u8>,
}

impl Lines {
    /// Opens `path`; a missing file is damage, not an I/O failure.
    pub fn open(path: PathBuf) -> Result<Self, BackupError> {
        let file = File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                BackupError::Damaged(format!("{} is missing", name(&path)))
            }
            _ => BackupError::io(&path, &e),
        })?;
        Ok(Self {
            path,
            reader: BufReader::new(file),
            hash: Sha256::new(),
            number: 0,
            line: Vec::new(),
        })
    }

    /// The next line (without its newline) and its number, from 1; `None` at the end.
    pub fn next_line(&mut self) -> Result<Option<(u64, &str)>, BackupError> {
        self.line.clear();
        let read = self
            .reader
            .read_until(b'\n', &mut self.line)
            .map_err(|e| BackupError::io(&self.path, &e))?;
        if read == 0 {
            return Ok(None);
        }
        self.hash.update(&self.line);
        self.number += 1;
        let number = self.number;
        let text = std::str::from_utf8(&self.line).map_err(|_| {
            BackupError::Damaged(format!("{} line {number} is not UTF-8", name(&self.path)))
        })?;
        Ok(Some((number, text.strip_suffix('\n').unwrap_or(text))))
    }

    /// The number of lines read and the SHA-256 of the bytes read.
    pub fn finish(self) -> (u64, String) {
        (self.number, hex::encode(self.hash.finalize()))
    }
}

/// A file's name for messages.
pub fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
