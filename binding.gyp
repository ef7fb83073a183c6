{
  "targets": [
    {
      "target_name": "vaultpath_native",
      "conditions": [
        ["OS=='linux'", { "sources": [
          "native/kernels/aead.c", "native/kernels/fs_at.c", "native/kernels/gear.c", "native/kernels/io.c",
          "native/kernels/open_blob.c", "native/kernels/pack.c", "native/kernels/seal_file.c", "native/kernels/statx.c",
          "native/kernels/write_file.c",
          "native/napi/module.c", "native/napi/batch.c", "native/napi/crypto.c", "native/napi/pack.c",
          "native/napi/statx.c", "native/napi/write_file.c", "native/napi/fs_at.c", "native/napi/memory.c",
          "native/napi/gear.c"
        ] }]
      ],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
