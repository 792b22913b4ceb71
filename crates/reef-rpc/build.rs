//! Generates the gRPC code of `proto/node.proto`.

fn main() {
    let proto_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let proto = proto_dir.join("node.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    tonic_prost_build::configure()
        .bytes(".")
        .compile_protos(&[proto], &[proto_dir])
        .expect(
            "compile proto/node.proto (is protoc installed? scripts/ensure-deps.sh installs it)",
        );
}
