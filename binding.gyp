{
  "targets": [
    {
      "target_name": "vaultpath_statx",
      "conditions": [
        ["OS=='linux'", { "sources": ["native/statx.c"] }]
      ],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
