//! Compiles the Mesos `.proto` files without protoc: protox parses them into a
//! FileDescriptorSet, prost-build generates the Rust types from it, and every
//! message derives `prost_reflect::ReflectMessage` so the JSON codec can walk
//! descriptors (field names, `[default]`s, `required` labels) the way Mesos's
//! stout `protobuf.hpp` does.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from("proto");
    println!("cargo:rerun-if-changed={}", root.display());

    let mut files = Vec::new();
    collect(&root, &mut files)?;
    files.sort();

    let mut compiler = protox::Compiler::new([&root])?;
    compiler.include_imports(true).open_files(&files)?;
    let fds = compiler.file_descriptor_set();

    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("fds.bin"), compiler.encode_file_descriptor_set())?;

    let mut config = prost_build::Config::new();
    for message in compiler.descriptor_pool().all_messages() {
        // Map entries are not generated as types by prost.
        if message.is_map_entry() {
            continue;
        }
        let name = message.full_name();
        config.type_attribute(
            name,
            format!(
                "#[derive(::prost_reflect::ReflectMessage)] \
                 #[prost_reflect(message_name = \"{name}\", descriptor_pool = \"crate::DESCRIPTOR_POOL\")]"
            ),
        );
    }
    config.btree_map(["."]);
    config.compile_fds(fds)?;
    Ok(())
}

fn collect(dir: &std::path::Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            // protox wants paths relative to an include root.
            if let Ok(rel) = path.strip_prefix("proto") {
                out.push(rel.to_path_buf());
            }
        }
    }
    Ok(())
}
