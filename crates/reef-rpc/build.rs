//! Generates the gRPC code of `proto/node.proto` and `proto/meta.proto`.

fn main() {
    // The runtime variable, not `env!`: a build cache shared between clones may hold this
    // script compiled in another clone.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let proto_dir = std::path::Path::new(&manifest_dir).join("../../proto");
    let protos = [proto_dir.join("node.proto"), proto_dir.join("meta.proto")];
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }
    tonic_prost_build::configure()
        .bytes(".")
        .compile_protos(&protos, &[proto_dir])
        .expect("compile proto/*.proto (is protoc installed? scripts/ensure-deps.sh installs it)");
}
