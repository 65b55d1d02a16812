//! Images from a local OCI image-layout store (`--image_providers=oci`,
//! `--oci_store_dir`, default `<work_dir>/store/oci`).
//!
//! `ContainerInfo.mesos.image.docker.name` (e.g. `busybox`, `busybox:1.36`,
//! `library/busybox:latest`) is looked up by the manifest annotation
//! `org.opencontainers.image.ref.name`, in either of the layouts skopeo and
//! `oras` produce:
//! - one layout for the whole store, `<store>/index.json`, refs named
//!   `<name>:<tag>` (`skopeo copy ... oci:<store>:<name>:<tag>`);
//! - one layout per repository, `<store>/<name>/index.json`, refs named
//!   `<tag>` (`skopeo copy ... oci:<store>/<name>:<tag>`).
//!
//! index.json → manifest (through a nested image index, picking this host's
//! platform) → config and layers; layers are unpacked once into
//! `<work_dir>/provisioner/layers/<algorithm>/<hex>` (`layer.rs`).

pub mod builder;
mod layer;

use std::fmt;
use std::path::{Path, PathBuf};

use oci_spec::image::{
    Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType, ANNOTATION_REF_NAME,
};

/// The `--image_providers` the containerizer supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageProvider {
    /// A local OCI image-layout store.
    Oci,
}

impl std::str::FromStr for ImageProvider {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "oci" => Ok(ImageProvider::Oci),
            other => Err(format!(
                "unsupported image provider '{other}' in --image_providers (supported: oci)"
            )),
        }
    }
}

/// An image that cannot be provisioned.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No image provider is configured.
    #[error("container image '{image}' requested but no --image_providers is configured")]
    NoProvider {
        /// The image asked for.
        image: String,
    },
    /// No manifest matches the reference.
    #[error("image '{image}' not found in OCI store '{store}'")]
    NotFound {
        /// The image asked for.
        image: String,
        /// The store searched.
        store: PathBuf,
    },
    /// The reference is malformed.
    #[error("invalid image reference '{0}'")]
    InvalidReference(String),
    /// A JSON document of the layout is unreadable.
    #[error("image '{image}': cannot read '{path}': {message}")]
    Document {
        /// The image.
        image: String,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// No manifest for this platform in an image index.
    #[error("image '{image}' has no manifest for {os}/{arch}")]
    NoPlatform {
        /// The image.
        image: String,
        /// This host's OS.
        os: String,
        /// This host's architecture.
        arch: String,
    },
    /// A layer in a format we cannot unpack.
    #[error("layer {digest}: unsupported {media_type}")]
    UnsupportedLayer {
        /// The layer.
        digest: String,
        /// Its media type.
        media_type: String,
    },
    /// The layer's content does not match its digest.
    #[error("layer blob '{}' has digest {actual}, not the one its name claims", blob.display())]
    DigestMismatch {
        /// The blob.
        blob: PathBuf,
        /// What it hashes to.
        actual: String,
    },
    /// Unpacking a layer failed.
    #[error("unpacking layer '{}': {source}", blob.display())]
    Unpack {
        /// The blob.
        blob: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// A filesystem operation failed.
    #[error("{action} '{}': {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
}

impl ImageError {
    fn io<'a>(
        action: &'static str,
        path: &'a Path,
    ) -> impl FnOnce(std::io::Error) -> ImageError + 'a {
        move |source| ImageError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }

    /// The errno behind the error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            ImageError::Io { source, .. } | ImageError::Unpack { source, .. } => {
                source.raw_os_error()
            }
            _ => None,
        }
    }
}

/// `name[:tag]`, tag defaulting to `latest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The repository, without a `docker.io/` or `docker.io/library/` prefix.
    pub name: String,
    /// The tag.
    pub tag: String,
}

impl Reference {
    /// Parses a Docker-style reference.
    pub fn parse(image: &str) -> Result<Reference, ImageError> {
        let invalid = || ImageError::InvalidReference(image.to_owned());
        let image = image.trim();
        if image.is_empty() || image.contains('@') || image.contains("..") {
            return Err(invalid());
        }
        // A ':' after the last '/' separates the tag (a ':' before it is a
        // registry port).
        let slash = image.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match image[slash..].rfind(':') {
            Some(i) => (&image[..slash + i], &image[slash + i + 1..]),
            None => (image, "latest"),
        };
        if name.is_empty() || tag.is_empty() || name.starts_with('/') || name.ends_with('/') {
            return Err(invalid());
        }
        let name = name
            .strip_prefix("docker.io/")
            .map(|n| n.strip_prefix("library/").unwrap_or(n))
            .unwrap_or(name);
        Ok(Reference {
            name: name.to_owned(),
            tag: tag.to_owned(),
        })
    }

    /// The ref names that identify this image in a whole-store index.
    fn full_names(&self) -> Vec<String> {
        let mut names = vec![format!("{}:{}", self.name, self.tag)];
        if !self.name.contains('/') {
            names.push(format!("library/{}:{}", self.name, self.tag));
            names.push(format!("docker.io/library/{}:{}", self.name, self.tag));
        } else {
            names.push(format!("docker.io/{}:{}", self.name, self.tag));
        }
        names
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.name, self.tag)
    }
}

/// A provisioned image: unpacked layers and the runtime config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Unpacked layer directories, topmost first (overlay `lowerdir` order).
    pub layers: Vec<PathBuf>,
    /// `config.Env`, split at the first '='.
    pub env: Vec<(String, String)>,
    /// `config.Entrypoint` followed by `config.Cmd`.
    pub command: Vec<String>,
}

/// A local OCI image-layout store plus the layer cache.
#[derive(Debug, Clone)]
pub struct OciStore {
    store: PathBuf,
    cache: PathBuf,
}

impl OciStore {
    /// A store at `store` unpacking into `cache`.
    pub fn new(store: impl Into<PathBuf>, cache: impl Into<PathBuf>) -> Self {
        OciStore {
            store: store.into(),
            cache: cache.into(),
        }
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.store
    }

    /// Resolves `image` and unpacks its layers (blocking: run it off the
    /// async runtime).
    pub fn provision(&self, image: &str) -> Result<Image, ImageError> {
        let reference = Reference::parse(image)?;
        let (layout, manifest) = self.find_manifest(image, &reference)?;
        let manifest = self.manifest_for_platform(image, &layout, &manifest)?;
        let config: ImageConfiguration = read_json(image, &blob_path(&layout, manifest.config()))?;
        let mut layers = manifest
            .layers()
            .iter()
            .map(|layer| layer::ensure_unpacked(&layout, &self.cache, layer))
            .collect::<Result<Vec<_>, _>>()?;
        layers.reverse();
        let runtime = config.config().clone().unwrap_or_default();
        let env = runtime
            .env()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|entry| {
                entry
                    .split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
            })
            .collect();
        let command = runtime
            .entrypoint()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .chain(runtime.cmd().clone().unwrap_or_default())
            .collect();
        Ok(Image {
            layers,
            env,
            command,
        })
    }

    /// Finds the manifest descriptor; returns the layout directory holding it.
    fn find_manifest(
        &self,
        image: &str,
        reference: &Reference,
    ) -> Result<(PathBuf, Descriptor), ImageError> {
        let full_names = reference.full_names();
        let per_repo = self.store.join(&reference.name);
        let candidates = [
            (self.store.clone(), full_names.clone()),
            (per_repo, {
                let mut names = vec![reference.tag.clone()];
                names.extend(full_names);
                names
            }),
        ];
        for (layout, names) in candidates {
            let index_path = layout.join("index.json");
            if !index_path.is_file() {
                continue;
            }
            let index: ImageIndex = read_json(image, &index_path)?;
            let found = index.manifests().iter().find(|descriptor| {
                descriptor
                    .annotations()
                    .as_ref()
                    .and_then(|a| a.get(ANNOTATION_REF_NAME))
                    .is_some_and(|name| names.contains(name))
            });
            if let Some(descriptor) = found {
                return Ok((layout, descriptor.clone()));
            }
        }
        Err(ImageError::NotFound {
            image: image.to_owned(),
            store: self.store.clone(),
        })
    }

    /// Reads the manifest, descending through an image index to this
    /// platform's manifest.
    fn manifest_for_platform(
        &self,
        image: &str,
        layout: &Path,
        descriptor: &Descriptor,
    ) -> Result<ImageManifest, ImageError> {
        if *descriptor.media_type() != MediaType::ImageIndex {
            return read_json(image, &blob_path(layout, descriptor));
        }
        let index: ImageIndex = read_json(image, &blob_path(layout, descriptor))?;
        let arch = oci_spec::image::Arch::default().to_string();
        let os = oci_spec::image::Os::default().to_string();
        let matching = index.manifests().iter().find(|m| {
            m.platform()
                .as_ref()
                .is_some_and(|p| p.architecture().to_string() == arch && p.os().to_string() == os)
        });
        let manifest = matching.ok_or_else(|| ImageError::NoPlatform {
            image: image.to_owned(),
            os,
            arch,
        })?;
        read_json(image, &blob_path(layout, manifest))
    }
}

fn blob_path(layout: &Path, descriptor: &Descriptor) -> PathBuf {
    let digest = descriptor.digest();
    layout
        .join("blobs")
        .join(digest.algorithm().to_string())
        .join(digest.digest())
}

fn read_json<T: serde::de::DeserializeOwned>(image: &str, path: &Path) -> Result<T, ImageError> {
    let document = |message: String| ImageError::Document {
        image: image.to_owned(),
        path: path.to_owned(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| document(e.to_string()))?;
    serde_json::from_slice(&bytes).map_err(|e| document(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_default_the_tag_and_drop_the_docker_hub_prefix() {
        let parse = |s| Reference::parse(s).expect(s);
        assert_eq!(
            parse("busybox"),
            Reference {
                name: "busybox".into(),
                tag: "latest".into()
            }
        );
        assert_eq!(
            parse("docker.io/library/busybox:1.36").to_string(),
            "busybox:1.36"
        );
        assert_eq!(
            parse("registry:5000/team/app").to_string(),
            "registry:5000/team/app:latest"
        );
        for bad in ["", "a@sha256:00", ":tag", "a:", "../x"] {
            assert!(Reference::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn providers_other_than_oci_are_rejected_with_the_flag_name() {
        assert_eq!("OCI".parse::<ImageProvider>(), Ok(ImageProvider::Oci));
        let error = "appc".parse::<ImageProvider>().expect_err("appc");
        assert!(error.contains("--image_providers"), "{error}");
    }

    #[test]
    fn missing_image_names_the_image_and_store() {
        let store = tempfile::tempdir().expect("store");
        let error = OciStore::new(store.path(), store.path().join("cache"))
            .provision("nope:1")
            .expect_err("missing");
        let text = error.to_string();
        assert!(
            text.contains("'nope:1'") && text.contains(&store.path().display().to_string()),
            "{text}"
        );
    }
}
