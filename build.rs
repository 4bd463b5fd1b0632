//! Embeds folio's own model when `models/folio-ocr-small/` holds it (see src/models/embedded.rs);
//! without it the binary builds anyway and asks for `--model`.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(folio_embedded_model)");
    println!("cargo::rerun-if-changed=models/folio-ocr-small");
    if std::path::Path::new("models/folio-ocr-small/model.safetensors").is_file() {
        println!("cargo::rustc-cfg=folio_embedded_model");
    }
}
