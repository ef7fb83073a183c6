{
  "targets": [
    {
      "target_name": "vaultpath_statx",
      "conditions": [
        ["OS=='linux'", { "sources": ["native/statx.c", "native/write_file.c", "native/fs_at.c", "native/blob_crypto.c", "native/memory.c", "native/gear.c"] }]
      ],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
