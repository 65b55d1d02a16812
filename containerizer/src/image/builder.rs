//! Writes small OCI image layouts (tar+gzip layers, config, manifest, index).
//! For tests and benchmarks, which build their images from local files
//! (e.g. Debian's busybox-static) since the test hosts have no registry.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// One entry of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A directory with a mode.
    Dir(String, u32),
    /// A regular file with contents and a mode.
    File(String, Vec<u8>, u32),
    /// A regular file copied from the host, keeping its mode.
    HostFile(String, PathBuf),
    /// A symlink to a target.
    Symlink(String, String),
    /// An OCI whiteout hiding the path in lower layers (`.wh.<name>`).
    Whiteout(String),
    /// An opaque-directory marker (`<dir>/.wh..wh..opq`).
    Opaque(String),
}

/// Builds an image: layers bottom first, plus `Env` and `Cmd`.
#[derive(Debug, Clone, Default)]
pub struct ImageBuilder {
    layers: Vec<Vec<Entry>>,
    env: Vec<String>,
    cmd: Vec<String>,
}

impl ImageBuilder {
    /// An empty image.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a layer on top.
    pub fn layer(mut self, entries: Vec<Entry>) -> Self {
        self.layers.push(entries);
        self
    }

    /// Sets `config.Env` (`KEY=VALUE`).
    pub fn env(mut self, env: &[&str]) -> Self {
        self.env = env.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Sets `config.Cmd`.
    pub fn cmd(mut self, cmd: &[&str]) -> Self {
        self.cmd = cmd.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Writes the image into the layout at `layout` (created if needed),
    /// adding a manifest annotated `org.opencontainers.image.ref.name` =
    /// `ref_name` to its index.json.
    pub fn write(&self, layout: &Path, ref_name: &str) -> io::Result<()> {
        fs::create_dir_all(layout.join("blobs/sha256"))?;
        fs::write(
            layout.join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for entries in &self.layers {
            let tar = tar_of(entries)?;
            diff_ids.push(format!("sha256:{:x}", Sha256::digest(&tar)));
            let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
            gz.write_all(&tar)?;
            let blob = gz.finish()?;
            layers.push(descriptor(
                "application/vnd.oci.image.layer.v1.tar+gzip",
                &write_blob(layout, &blob)?,
                blob.len(),
            ));
        }
        let config = json!({
            "architecture": oci_spec::image::Arch::default().to_string(),
            "os": "linux",
            "config": { "Env": self.env, "Cmd": self.cmd },
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
        });
        let config = serde_json::to_vec(&config)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor("application/vnd.oci.image.config.v1+json", &write_blob(layout, &config)?, config.len()),
            "layers": layers,
        });
        let manifest = serde_json::to_vec(&manifest)?;
        let mut entry = descriptor(
            "application/vnd.oci.image.manifest.v1+json",
            &write_blob(layout, &manifest)?,
            manifest.len(),
        );
        entry["annotations"] = json!({ "org.opencontainers.image.ref.name": ref_name });
        add_to_index(layout, entry)
    }
}

fn descriptor(media_type: &str, digest: &str, size: usize) -> Value {
    json!({ "mediaType": media_type, "digest": digest, "size": size })
}

fn write_blob(layout: &Path, bytes: &[u8]) -> io::Result<String> {
    let hex = format!("{:x}", Sha256::digest(bytes));
    fs::write(layout.join("blobs/sha256").join(&hex), bytes)?;
    Ok(format!("sha256:{hex}"))
}

fn add_to_index(layout: &Path, entry: Value) -> io::Result<()> {
    let path = layout.join("index.json");
    let mut index = match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            json!({ "schemaVersion": 2, "manifests": [] })
        }
        Err(e) => return Err(e),
    };
    match index["manifests"].as_array_mut() {
        Some(manifests) => manifests.push(entry),
        None => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "index.json has no manifests array",
            ))
        }
    }
    fs::write(&path, serde_json::to_vec_pretty(&index)?)
}

fn tar_of(entries: &[Entry]) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        match entry {
            Entry::Dir(path, mode) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_size(0);
                builder.append_data(&mut header, path, io::empty())?;
            }
            Entry::File(path, data, mode) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, path, data.as_slice())?;
            }
            Entry::HostFile(path, source) => {
                let data = fs::read(source)?;
                let mode =
                    std::os::unix::fs::PermissionsExt::mode(&fs::metadata(source)?.permissions());
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(mode & 0o7777);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, path, data.as_slice())?;
            }
            Entry::Symlink(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, path, target)?;
            }
            Entry::Whiteout(path) => {
                let path = Path::new(path);
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let whiteout = path.with_file_name(format!(".wh.{name}"));
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(0);
                builder.append_data(&mut header, whiteout, io::empty())?;
            }
            Entry::Opaque(dir) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(0);
                builder.append_data(
                    &mut header,
                    Path::new(dir).join(".wh..wh..opq"),
                    io::empty(),
                )?;
            }
        }
    }
    builder.into_inner()
}

/// A layer with a static busybox as `/bin/busybox`, the applets tests and
/// benchmarks use as symlinks, and the usual top-level directories.
pub fn busybox_layer(busybox: &Path) -> Vec<Entry> {
    let mut entries: Vec<Entry> = [
        "bin", "etc", "tmp", "proc", "sys", "dev", "mnt", "root", "var",
    ]
    .iter()
    .map(|dir| Entry::Dir(dir.to_string(), if *dir == "tmp" { 0o1777 } else { 0o755 }))
    .collect();
    entries.push(Entry::HostFile("bin/busybox".into(), busybox.to_owned()));
    for applet in [
        "sh", "true", "false", "cat", "ls", "echo", "id", "hostname", "sleep", "mount", "ps",
        "test", "grep", "wc", "readlink", "stat", "touch", "mkdir", "env",
    ] {
        entries.push(Entry::Symlink(format!("bin/{applet}"), "busybox".into()));
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::OciStore;

    #[test]
    fn written_image_provisions_with_whiteouts_applied_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("store");
        ImageBuilder::new()
            .layer(vec![
                Entry::Dir("etc".into(), 0o755),
                Entry::File("etc/a".into(), b"a".to_vec(), 0o644),
                Entry::File("etc/b".into(), b"b".to_vec(), 0o644),
            ])
            .layer(vec![Entry::Whiteout("etc/a".into())])
            .env(&["PATH=/bin", "X=1"])
            .cmd(&["/bin/sh"])
            .write(&store, "app:v1")
            .expect("write image");
        let image = OciStore::new(&store, dir.path().join("cache"))
            .provision("app:v1")
            .expect("provision");
        assert_eq!(image.layers.len(), 2);
        assert!(
            image.layers[0].join("etc/a").exists(),
            "top layer holds the whiteout"
        );
        assert!(image.layers[1].join("etc/b").is_file(), "bottom layer last");
        assert_eq!(
            image.env,
            [
                ("PATH".to_string(), "/bin".to_string()),
                ("X".into(), "1".into())
            ]
        );
        assert_eq!(image.command, ["/bin/sh"]);
    }
}
