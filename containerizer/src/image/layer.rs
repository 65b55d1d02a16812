//! Unpacking one layer blob into the content-addressed layer cache.
//!
//! A layer is unpacked once, into a staging directory renamed into place, so
//! concurrent launches of the same image never see a half-unpacked layer (the
//! loser of a rename race discards its copy). The blob's digest is checked
//! while it streams through the decompressor.
//!
//! OCI whiteouts become overlayfs whiteouts, because each layer is an overlay
//! lower directory: `.wh.<name>` → a 0/0 character device `<name>`;
//! `.wh..wh..opq` → the `trusted.overlay.opaque=y` xattr on its directory.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use oci_spec::image::{Descriptor, MediaType};
use sha2::{Digest as _, Sha256};

use super::ImageError;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
}

fn compression(media_type: &MediaType) -> Option<Compression> {
    match media_type {
        MediaType::ImageLayer | MediaType::ImageLayerNonDistributable => Some(Compression::None),
        MediaType::ImageLayerGzip | MediaType::ImageLayerNonDistributableGzip => {
            Some(Compression::Gzip)
        }
        MediaType::Other(other) => match other.as_str() {
            "application/vnd.docker.image.rootfs.diff.tar.gzip" => Some(Compression::Gzip),
            "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
            _ => None,
        },
        _ => None,
    }
}

/// Returns the unpacked directory of `layer`, unpacking it first if needed.
pub(super) fn ensure_unpacked(
    store: &Path,
    cache: &Path,
    layer: &Descriptor,
) -> Result<PathBuf, ImageError> {
    let digest = layer.digest();
    let (algorithm, hex) = (digest.algorithm().to_string(), digest.digest().to_owned());
    let target = cache.join(&algorithm).join(&hex);
    if target.is_dir() {
        return Ok(target);
    }
    let compression =
        compression(layer.media_type()).ok_or_else(|| ImageError::UnsupportedLayer {
            digest: digest.to_string(),
            media_type: layer.media_type().to_string(),
        })?;
    if algorithm != "sha256" {
        return Err(ImageError::UnsupportedLayer {
            digest: digest.to_string(),
            media_type: format!("digest algorithm {algorithm}"),
        });
    }
    let blob = store.join("blobs").join(&algorithm).join(&hex);
    let parent = cache.join(&algorithm);
    fs::create_dir_all(&parent).map_err(ImageError::io("create", &parent))?;
    let staging = parent.join(format!(".{hex}.{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir(&staging).map_err(ImageError::io("create", &staging))?;
    let result = unpack_verified(&blob, compression, &hex, &staging)
        .and_then(|()| publish(&staging, &target));
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result.map(|()| target)
}

/// Renames the staging directory into place; a concurrent unpack may have won.
fn publish(staging: &Path, target: &Path) -> Result<(), ImageError> {
    match fs::rename(staging, target) {
        Ok(()) => Ok(()),
        Err(_) if target.is_dir() => {
            let _ = fs::remove_dir_all(staging);
            Ok(())
        }
        Err(error) => Err(ImageError::io("rename into", target)(error)),
    }
}

fn unpack_verified(
    blob: &Path,
    compression: Compression,
    hex: &str,
    dst: &Path,
) -> Result<(), ImageError> {
    let file = File::open(blob).map_err(ImageError::io("open layer", blob))?;
    let mut hashing = HashingReader {
        inner: BufReader::new(file),
        hasher: Sha256::new(),
    };
    {
        let decoded: Box<dyn Read + '_> = match compression {
            Compression::Gzip => Box::new(GzDecoder::new(&mut hashing)),
            Compression::None => Box::new(&mut hashing),
        };
        unpack(decoded, dst).map_err(|error| ImageError::Unpack {
            blob: blob.to_owned(),
            source: error,
        })?;
    }
    // tar stops at its end-of-archive marker; hash whatever padding follows.
    io::copy(&mut hashing, &mut io::sink()).map_err(ImageError::io("read layer", blob))?;
    let actual = format!("{:x}", hashing.hasher.finalize());
    if actual != hex {
        return Err(ImageError::DigestMismatch {
            blob: blob.to_owned(),
            actual: format!("sha256:{actual}"),
        });
    }
    Ok(())
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Unpacks a tar stream into `dst`, translating whiteouts.
pub(super) fn unpack(reader: impl Read, dst: &Path) -> io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name == OPAQUE_MARKER {
            let dir = inside(dst, path.parent().unwrap_or(Path::new("")))?;
            fs::create_dir_all(&dir)?;
            set_opaque(&dir)?;
        } else if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            let dir = inside(dst, path.parent().unwrap_or(Path::new("")))?;
            fs::create_dir_all(&dir)?;
            whiteout(&dir.join(hidden))?;
        } else {
            // unpack_in refuses paths with '..' and links leaving `dst`.
            entry.unpack_in(dst)?;
        }
    }
    Ok(())
}

/// `dst/relative`, refusing '..', absolute paths and symlinked ancestors that
/// lead outside `dst`.
fn inside(dst: &Path, relative: &Path) -> io::Result<PathBuf> {
    let mut path = dst.to_owned();
    for component in relative.components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("whiteout path '{}' leaves the layer", relative.display()),
                ))
            }
        }
        if path.is_symlink() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("whiteout under symlink '{}'", path.display()),
            ));
        }
    }
    Ok(path)
}

fn whiteout(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path)?,
        Ok(_) => fs::remove_file(path)?,
        Err(_) => {}
    }
    nix::sys::stat::mknod(
        path,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        nix::sys::stat::makedev(0, 0),
    )
    .map_err(io::Error::from)
}

fn set_opaque(dir: &Path) -> io::Result<()> {
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `path`, the attribute name and the value are valid for reads of
    // the given lengths for the duration of the call.
    let ret = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    fn tar_with(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, path, *data)
                .expect("append");
        }
        builder.into_inner().expect("finish tar")
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        let dst = tempfile::tempdir().expect("tempdir");
        let layer = tar_with(&[
            ("etc/keep", b"k"),
            ("etc/.wh.gone", b""),
            ("var/.wh..wh..opq", b""),
        ]);
        unpack(&layer[..], dst.path()).expect("unpack");
        assert_eq!(
            fs::read(dst.path().join("etc/keep")).expect("regular file"),
            b"k"
        );
        let gone = fs::symlink_metadata(dst.path().join("etc/gone")).expect("whiteout exists");
        assert!(gone.file_type().is_char_device());
        assert_eq!(gone.rdev(), 0);
        let mut value = [0u8; 4];
        let path =
            std::ffi::CString::new(dst.path().join("var").into_os_string().into_encoded_bytes())
                .expect("path");
        // SAFETY: valid NUL-terminated strings and a 4-byte buffer.
        let len = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                c"trusted.overlay.opaque".as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        assert_eq!(len, 1, "opaque xattr set");
        assert_eq!(value[0], b'y');
    }

    #[test]
    fn whiteout_escaping_the_layer_is_refused() {
        let dst = tempfile::tempdir().expect("tempdir");
        std::os::unix::fs::symlink("/etc", dst.path().join("link")).expect("symlink");
        let layer = tar_with(&[("link/.wh.passwd", b"")]);
        let error = unpack(&layer[..], dst.path()).expect_err("escape refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(Path::new("/etc/passwd").is_file(), "host untouched");
    }

    #[test]
    fn digest_mismatch_is_detected_and_nothing_is_published() {
        let store = tempfile::tempdir().expect("store");
        let cache = tempfile::tempdir().expect("cache");
        let blob = tar_with(&[("a", b"1")]);
        let wrong = "0".repeat(64);
        let blobs = store.path().join("blobs/sha256");
        fs::create_dir_all(&blobs).expect("blobs dir");
        fs::write(blobs.join(&wrong), &blob).expect("blob");
        let digest: oci_spec::image::Digest = format!("sha256:{wrong}").parse().expect("digest");
        let descriptor = Descriptor::new(MediaType::ImageLayer, blob.len() as u64, digest);
        let error = ensure_unpacked(store.path(), cache.path(), &descriptor).expect_err("mismatch");
        assert!(
            matches!(error, ImageError::DigestMismatch { .. }),
            "{error}"
        );
        let left: Vec<_> = fs::read_dir(cache.path().join("sha256"))
            .expect("cache dir")
            .collect();
        assert!(
            left.is_empty(),
            "no staging or published layer left: {left:?}"
        );
    }

    #[test]
    fn unpacked_layer_is_reused() {
        let store = tempfile::tempdir().expect("store");
        let cache = tempfile::tempdir().expect("cache");
        let blob = tar_with(&[("a", b"1")]);
        let hex = format!("{:x}", Sha256::digest(&blob));
        let blobs = store.path().join("blobs/sha256");
        fs::create_dir_all(&blobs).expect("blobs dir");
        fs::write(blobs.join(&hex), &blob).expect("blob");
        let digest: oci_spec::image::Digest = format!("sha256:{hex}").parse().expect("digest");
        let descriptor = Descriptor::new(MediaType::ImageLayer, blob.len() as u64, digest);
        let first = ensure_unpacked(store.path(), cache.path(), &descriptor).expect("unpack");
        let inode = fs::metadata(first.join("a")).expect("file").ino();
        fs::remove_file(blobs.join(&hex)).expect("remove blob");
        let second = ensure_unpacked(store.path(), cache.path(), &descriptor).expect("cached");
        assert_eq!(first, second);
        assert_eq!(fs::metadata(second.join("a")).expect("file").ino(), inode);
    }
}
