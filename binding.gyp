{
  "targets": [
    {
      "target_name": "vaultpath_statx",
      "conditions": [
        ["OS=='linux'", { "sources": ["native/statx.c", "native/write_file.c", "native/fs_at.c", "native/blob_crypto.c", "native/memory.c", "native/gear.c", "native/argon2_napi.c", "native/argon2.c", "native/blake2b.c"] }]
      ],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-deprecated-declarations"]
    }
  ]
}
