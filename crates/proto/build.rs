//! Compiles `proto/*.proto` with the protoc shipped by `protoc-bin-vendored`, so that building
//! Meridian needs no system protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path()?;
        // SAFETY: build scripts are single-threaded; nothing else reads the environment concurrently.
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var("PROTOC", protoc);
        }
    }
    // The package directory of this run, read at run time: cargo reuses a compiled build script
    // across checkouts at other paths that share a target directory, so a path compiled in
    // with `env!` could name another checkout (or one that no longer exists).
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")?;
    let root = std::path::Path::new(&manifest_dir).join("../../proto");
    let names = ["meridian.proto", "catalog.proto", "etcd_kv.proto"];
    // Relative to this package, so that checkouts at other paths sharing one target directory
    // (cargo's artifact hashes do not depend on the checkout's path) watch their own files.
    for name in names {
        println!("cargo:rerun-if-changed=../../proto/{name}");
    }
    let files = names.map(|f| root.join(f));
    tonic_prost_build::configure().compile_protos(&files, &[root])?;
    Ok(())
}
