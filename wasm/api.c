/* Entry points exported to the host (wasmtime, or ctypes for the native build). The host places the whole GGUF
 * image in a region it reserves with llm_reserve(), then calls llm_load(); strings travel through buffers from
 * llm_alloc(). One model per instance: parallelism comes from several instances. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm.h"

static char err_buf[512];
static gguf_file G;
static model_t M;
static vocab_t V;
static int loaded;

/* sampling */
static float s_temp = 0.0f, s_top_p = 1.0f;
static int s_top_k = 0;
static uint64_t s_rng = 1234;

/* saved context */
static uint8_t *st_k, *st_v;
static float *st_logits;
static uint32_t st_n_past;
static int st_valid;

static char info_buf[1024];

void llm_set_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
    va_end(ap);
}

LLM_EXPORT(llm_error) const char *llm_error(void) { return err_buf; }

LLM_EXPORT(llm_alloc) void *llm_alloc(uint32_t n) { return malloc(n ? n : 1); }
LLM_EXPORT(llm_free) void llm_free(void *p) { free(p); }

/* Reserves a region of n bytes for the model image outside the malloc heap (wasm: fresh pages from
 * memory.grow, so a 3 GB file costs exactly its size). Returns 0 when it does not fit. */
LLM_EXPORT(llm_reserve) void *llm_reserve(uint32_t n) {
#if defined(__wasm__)
    uint32_t pages = (uint32_t)(((uint64_t)n + 65535) / 65536) + 1;
    int old = __builtin_wasm_memory_grow(0, pages);
    if (old < 0) {
        llm_set_error("cannot reserve %u bytes of wasm32 memory for the model (the 4 GiB address space is exhausted); "
                      "use the native engine for models this large", n);
        return NULL;
    }
    uintptr_t base = (uintptr_t)old * 65536u;
    return (void *)((base + 63) & ~(uintptr_t)63);
#else
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 1)) {
        llm_set_error("cannot allocate %u bytes for the model", n);
        return NULL;
    }
    return p;
#endif
}

LLM_EXPORT(llm_release) void llm_release(void *p) {
#if defined(__wasm__)
    (void)p; /* wasm memory cannot shrink; the host drops the instance instead */
#else
    free(p);
#endif
}

static void clear_saved(void) {
    free(st_k); free(st_v); free(st_logits);
    st_k = st_v = NULL;
    st_logits = NULL;
    st_valid = 0;
}

LLM_EXPORT(llm_unload) void llm_unload(void) {
    if (loaded) {
        model_free(&M);
        vocab_free(&V);
        gguf_free(&G);
    }
    clear_saved();
    loaded = 0;
}

/* The image at base must have been written for this call: Q8_0 tensors are rearranged in place. */
LLM_EXPORT(llm_load) int llm_load(const uint8_t *base, uint32_t size, uint32_t n_ctx) {
    llm_unload();
    err_buf[0] = 0;
    int rc = gguf_parse(&G, base, size);
    if (rc) return rc;
    rc = model_load(&M, &G, n_ctx);
    if (rc) {
        model_free(&M);
        gguf_free(&G);
        return rc;
    }
    rc = vocab_load(&V, &G, M.n_vocab);
    if (rc) {
        model_free(&M);
        gguf_free(&G);
        return rc;
    }
    loaded = 1;
    return LLM_OK;
}

static int need_model(void) {
    if (!loaded) {
        llm_set_error("no model is loaded");
        return 0;
    }
    return 1;
}

LLM_EXPORT(llm_info) const char *llm_info(void) {
    if (!need_model()) return "";
    static const char *tn[] = {"", "spm", "bpe"};
    snprintf(info_buf, sizeof(info_buf),
             "{\"arch\":\"%s\",\"n_vocab\":%u,\"n_embd\":%u,\"n_layer\":%u,\"n_head\":%u,"
             "\"n_head_kv\":%u,\"n_ff\":%u,\"n_ctx\":%u,\"n_ctx_train\":%u,\"rope_base\":%g,\"rms_eps\":%g,"
             "\"tokenizer\":\"%s\",\"bos\":%d,\"eos\":%d,\"add_bos\":%d,\"weight_type\":\"%s\",\"kv_type\":\"%s\"}",
             M.arch == ARCH_PHI3 ? "phi3" : "llama", M.n_vocab, M.n_embd, M.n_layer, M.n_head, M.n_head_kv, M.n_ff,
             M.n_ctx, M.n_ctx_train, M.rope_base, M.eps, tn[V.kind], V.bos, V.eos, V.add_bos,
             ggml_type_name(M.layers[0].w_down.type), M.kv_f16 ? "F16" : "F32");
    return info_buf;
}

LLM_EXPORT(llm_model_name) const char *llm_model_name(void) { return loaded ? M.name : ""; }

LLM_EXPORT(llm_tokenize)
int llm_tokenize(const char *text, uint32_t len, int add_special, int parse_special, int32_t *out, int max) {
    if (!need_model()) return -1;
    return tokenize(&V, text, len, add_special, parse_special, out, max);
}

LLM_EXPORT(llm_token_piece) int llm_token_piece(int32_t tok, int special, char *buf, int max) {
    if (!need_model()) return -1;
    return token_piece(&V, tok, special, buf, max);
}

LLM_EXPORT(llm_eval) int llm_eval(const int32_t *toks, uint32_t n, int want_logits) {
    if (!need_model()) return LLM_ERR_STATE;
    return model_eval(&M, toks, n, want_logits);
}

LLM_EXPORT(llm_logits) float *llm_logits(void) { return loaded ? M.logits : NULL; }
LLM_EXPORT(llm_n_vocab) uint32_t llm_n_vocab(void) { return loaded ? M.n_vocab : 0; }
LLM_EXPORT(llm_n_past) uint32_t llm_n_past(void) { return loaded ? M.n_past : 0; }
LLM_EXPORT(llm_n_ctx) uint32_t llm_n_ctx(void) { return loaded ? M.n_ctx : 0; }
LLM_EXPORT(llm_is_eog) int llm_is_eog(int32_t tok) {
    return loaded && tok >= 0 && (uint32_t)tok < V.n_vocab && V.eog[tok];
}
LLM_EXPORT(llm_bos) int32_t llm_bos(void) { return loaded ? V.bos : -1; }
LLM_EXPORT(llm_eos) int32_t llm_eos(void) { return loaded ? V.eos : -1; }
LLM_EXPORT(llm_add_bos) int llm_add_bos(void) { return loaded ? V.add_bos : 0; }

/* Forgets the context (positions); the weights stay. */
LLM_EXPORT(llm_reset) void llm_reset(void) {
    if (loaded) M.n_past = 0;
}

/* ---- sampling -------------------------------------------------------------------------------------- */
static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (s_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

LLM_EXPORT(llm_set_sampling) void llm_set_sampling(float temp, float top_p, int top_k, uint32_t seed_lo, uint32_t seed_hi) {
    s_temp = temp;
    s_top_p = top_p <= 0.0f || top_p > 1.0f ? 1.0f : top_p;
    s_top_k = top_k < 0 ? 0 : top_k;
    s_rng = ((uint64_t)seed_hi << 32) | seed_lo;
}

typedef struct { float p; int32_t id; } cand;
static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

LLM_EXPORT(llm_argmax) int32_t llm_argmax(void) {
    if (!need_model()) return -1;
    int32_t best = 0;
    for (uint32_t i = 1; i < M.n_vocab; i++)
        if (M.logits[i] > M.logits[best]) best = (int32_t)i;
    return best;
}

/* Greedy when temperature <= 0, else temperature + top-k + top-p with the seeded generator. */
LLM_EXPORT(llm_sample) int32_t llm_sample(void) {
    if (!need_model()) return -1;
    if (s_temp <= 0.0f) return llm_argmax();
    uint32_t n = M.n_vocab;
    cand *c = malloc(n * sizeof(cand));
    if (!c) return llm_argmax();
    float mx = -3.4e38f;
    for (uint32_t i = 0; i < n; i++) mx = M.logits[i] > mx ? M.logits[i] : mx;
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        c[i].id = (int32_t)i;
        c[i].p = expf((M.logits[i] - mx) / s_temp);
        sum += c[i].p;
    }
    qsort(c, n, sizeof(cand), cand_cmp);
    uint32_t keep = n;
    if (s_top_k > 0 && (uint32_t)s_top_k < keep) keep = (uint32_t)s_top_k;
    double kept = 0.0;
    for (uint32_t i = 0; i < keep; i++) kept += c[i].p;
    if (s_top_p < 1.0f) {
        double acc = 0.0;
        for (uint32_t i = 0; i < keep; i++) {
            acc += c[i].p;
            if (acc >= s_top_p * kept) {
                keep = i + 1;
                break;
            }
        }
        kept = acc;
    }
    (void)sum;
    double r = (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0) * kept;
    double acc = 0.0;
    int32_t tok = c[keep - 1].id;
    for (uint32_t i = 0; i < keep; i++) {
        acc += c[i].p;
        if (r < acc) {
            tok = c[i].id;
            break;
        }
    }
    free(c);
    return tok;
}

/* ---- saved context (prime a prompt once, restore it per request) ---------------------------------------- */
LLM_EXPORT(llm_save_state) int llm_save_state(void) {
    if (!need_model()) return 0;
    size_t row = (size_t)M.n_head_kv * M.head_dim * M.kv_elt;
    size_t per_layer = (size_t)M.n_past * row;
    clear_saved();
    st_k = malloc(per_layer * M.n_layer + 4);
    st_v = malloc(per_layer * M.n_layer + 4);
    st_logits = malloc((size_t)M.n_vocab * 4);
    if (!st_k || !st_v || !st_logits) {
        clear_saved();
        llm_set_error("out of memory saving the context");
        return 0;
    }
    for (uint32_t l = 0; l < M.n_layer; l++) {
        memcpy(st_k + l * per_layer, (uint8_t *)M.k_cache + (size_t)l * M.n_ctx * row, per_layer);
        memcpy(st_v + l * per_layer, (uint8_t *)M.v_cache + (size_t)l * M.n_ctx * row, per_layer);
    }
    memcpy(st_logits, M.logits, (size_t)M.n_vocab * 4);
    st_n_past = M.n_past;
    st_valid = 1;
    return 1;
}

LLM_EXPORT(llm_load_state) int llm_load_state(void) {
    if (!loaded || !st_valid) return 0;
    size_t row = (size_t)M.n_head_kv * M.head_dim * M.kv_elt;
    size_t per_layer = (size_t)st_n_past * row;
    for (uint32_t l = 0; l < M.n_layer; l++) {
        memcpy((uint8_t *)M.k_cache + (size_t)l * M.n_ctx * row, st_k + l * per_layer, per_layer);
        memcpy((uint8_t *)M.v_cache + (size_t)l * M.n_ctx * row, st_v + l * per_layer, per_layer);
    }
    memcpy(M.logits, st_logits, (size_t)M.n_vocab * 4);
    M.n_past = st_n_past;
    return 1;
}

LLM_EXPORT(llm_clear_state) void llm_clear_state(void) { clear_saved(); }
