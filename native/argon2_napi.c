/*
 * argon2id(passphrase: Uint8Array, salt: Uint8Array, t: number, mKiB: number, p: number, cancel?: Int32Array):
 *   Promise<Uint8Array>
 *
 * Argon2id v0x13 (argon2.c) to a 32-byte tag, run on a libuv worker thread (napi_create_async_work) so the event
 * loop stays free. Passphrase and salt are copied before the call returns; the copies, the block memory and the
 * tag are wiped once the work is done. Arguments of the wrong type or costs outside what argon2.c accepts throw
 * synchronously, before any work is queued. Setting cancel[0] to non-zero stops the fill within a few hundred
 * blocks; the promise then rejects with code "ECANCELLED". The caller's own bounds (kdf.ts) are applied first.
 */
#include <node_api.h>
#include <stdlib.h>
#include <string.h>

#include "argon2.h"
#include "blake2b.h"
#include "napi_job.h"

#define TAG_BYTES 32

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref cancel_ref;
  const int32_t *cancel;
  uint8_t *pwd;
  size_t pwd_len;
  uint8_t *salt;
  size_t salt_len;
  uint32_t t, m, p;
  int rc;
  uint8_t tag[TAG_BYTES];
} job_t;

static void job_free(napi_env env, job_t *job) {
  if (job->pwd) vp_wipe(job->pwd, job->pwd_len);
  free(job->pwd);
  free(job->salt);
  if (job->cancel_ref) napi_delete_reference(env, job->cancel_ref);
  vp_wipe(job->tag, sizeof job->tag);
  free(job);
}

static void execute(napi_env env, void *data) {
  job_t *job = data;
  job->rc = vp_argon2id(job->pwd, job->pwd_len, job->salt, job->salt_len, job->t, job->m, job->p, job->tag, TAG_BYTES,
                        job->cancel);
  vp_wipe(job->pwd, job->pwd_len);
}

static void complete(napi_env env, napi_status status, void *data) {
  job_t *job = data;
  if (status == napi_cancelled) job->rc = VP_ARGON2_ECANCELLED;
  if (job->rc == VP_ARGON2_OK) {
    napi_value buffer, key;
    void *bytes = NULL;
    napi_create_arraybuffer(env, TAG_BYTES, &bytes, &buffer);
    memcpy(bytes, job->tag, TAG_BYTES);
    napi_create_typedarray(env, napi_uint8_array, TAG_BYTES, buffer, 0, &key);
    napi_resolve_deferred(env, job->deferred, key);
  } else {
    const char *code = job->rc == VP_ARGON2_ENOMEM ? "ENOMEM" : job->rc == VP_ARGON2_ECANCELLED ? "ECANCELLED" : "EINVAL";
    const char *message = job->rc == VP_ARGON2_ENOMEM       ? "Argon2id: the block memory could not be allocated"
                          : job->rc == VP_ARGON2_ECANCELLED ? "Argon2id: cancelled"
                                                            : "Argon2id: parameters refused";
    napi_value code_value, message_value, error;
    napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value);
    napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &message_value);
    napi_create_error(env, code_value, message_value, &error);
    napi_reject_deferred(env, job->deferred, error);
  }
  napi_delete_async_work(env, job->work);
  job_free(env, job);
}

static napi_value fail(napi_env env, const char *code, const char *message) {
  napi_throw_type_error(env, code, message);
  return NULL;
}

/* The bytes of a Uint8Array (or Buffer), copied; NULL (nothing thrown) when the value is something else. */
static uint8_t *copy_bytes(napi_env env, napi_value value, size_t *len, int *ok) {
  bool is_typed = false;
  *ok = 0;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) return NULL;
  napi_typedarray_type type;
  void *data = NULL;
  if (napi_get_typedarray_info(env, value, &type, len, &data, NULL, NULL) != napi_ok || type != napi_uint8_array) return NULL;
  uint8_t *copy = malloc(*len ? *len : 1);
  if (!copy) return NULL;
  if (*len) memcpy(copy, data, *len);
  *ok = 1;
  return copy;
}

static int get_u32(napi_env env, napi_value value, uint32_t *out) {
  napi_valuetype kind;
  double d;
  if (napi_typeof(env, value, &kind) != napi_ok || kind != napi_number) return 0;
  napi_get_value_double(env, value, &d);
  if (!(d >= 0 && d <= 4294967295.0) || d != (double)(uint32_t)d) return 0;
  *out = (uint32_t)d;
  return 1;
}

static napi_value argon2id(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5)
    return fail(env, "EINVAL", "argon2id(passphrase, salt, t, mKiB, p, cancel?)");
  job_t *job = calloc(1, sizeof *job);
  if (!job) return fail(env, "ENOMEM", "Argon2id: out of memory");
  int ok = 0;
  job->pwd = copy_bytes(env, argv[0], &job->pwd_len, &ok);
  if (!ok) {
    job_free(env, job);
    return fail(env, "EINVAL", "Argon2id: the passphrase must be a Uint8Array");
  }
  job->salt = copy_bytes(env, argv[1], &job->salt_len, &ok);
  if (!ok) {
    job_free(env, job);
    return fail(env, "EINVAL", "Argon2id: the salt must be a Uint8Array");
  }
  if (!get_u32(env, argv[2], &job->t) || !get_u32(env, argv[3], &job->m) || !get_u32(env, argv[4], &job->p) ||
      vp_argon2id_check(job->pwd_len, job->salt_len, job->t, job->m, job->p, TAG_BYTES) != VP_ARGON2_OK) {
    job_free(env, job);
    return fail(env, "EINVAL", "Argon2id: parameters refused");
  }
  if (argc >= 6) {
    napi_valuetype kind;
    napi_typeof(env, argv[5], &kind);
    if (kind != napi_undefined) {
      bool is_typed = false;
      napi_typedarray_type type;
      size_t len = 0;
      void *data = NULL;
      napi_is_typedarray(env, argv[5], &is_typed);
      if (!is_typed || napi_get_typedarray_info(env, argv[5], &type, &len, &data, NULL, NULL) != napi_ok ||
          type != napi_int32_array || len < 1) {
        job_free(env, job);
        return fail(env, "EINVAL", "Argon2id: cancel must be an Int32Array");
      }
      /* The reference keeps the array, and so the memory the worker thread reads, alive until completion. */
      napi_create_reference(env, argv[5], 1, &job->cancel_ref);
      job->cancel = data;
    }
  }
  napi_value promise;
  napi_create_promise(env, &job->deferred, &promise);
  if (!vp_queue(env, "vaultpath:argon2id", execute, complete, job, &job->work, job->deferred)) job_free(env, job);
  return promise;
}

void vp_register_argon2(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "argon2id", NAPI_AUTO_LENGTH, argon2id, NULL, &fn);
  napi_set_named_property(env, exports, "argon2id", fn);
}
