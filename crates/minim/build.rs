//! Compiles `src/allocator.c`, the allocator-option shim, against the header of the
//! mimalloc that `libmimalloc-sys` builds, so option names are checked by the compiler
//! (their numbers differ between mimalloc versions).

fn main() {
    println!("cargo:rerun-if-changed=src/allocator.c");
    let include = std::env::var("DEP_MIMALLOC_INCLUDE_DIR")
        .expect("libmimalloc-sys exports its include directory (links = \"mimalloc\")");
    cc::Build::new()
        .file("src/allocator.c")
        .include(include)
        .warnings(true)
        .compile("minim_allocator");
}
