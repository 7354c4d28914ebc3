/* Shared declarations of the llama-family inference engine (compiled to wasm32-wasi and natively). */
#ifndef LLM_H
#define LLM_H

#include <stddef.h>
#include <stdint.h>

#if defined(__wasm__)
#define LLM_EXPORT(name) __attribute__((export_name(#name)))
#else
#define LLM_EXPORT(name) __attribute__((visibility("default")))
#endif

/* ---- errors ---------------------------------------------------------------------------------------- */
/* Error codes returned by the exported entry points; the text is in llm_error(). */
enum {
    LLM_OK = 0,
    LLM_ERR_FORMAT = 1,      /* not a GGUF file, or truncated / inconsistent */
    LLM_ERR_UNSUPPORTED = 2, /* unknown architecture, tensor type or tokenizer */
    LLM_ERR_MEMORY = 3,      /* does not fit in linear memory */
    LLM_ERR_STATE = 4,       /* no model loaded, context full, bad argument */
};
void llm_set_error(const char *fmt, ...);

/* ---- GGUF -------------------------------------------------------------------------------------------- */
enum {
    GGUF_T_U8 = 0, GGUF_T_I8, GGUF_T_U16, GGUF_T_I16, GGUF_T_U32, GGUF_T_I32, GGUF_T_F32, GGUF_T_BOOL,
    GGUF_T_STRING, GGUF_T_ARRAY, GGUF_T_U64, GGUF_T_I64, GGUF_T_F64, GGUF_T_COUNT
};

enum { /* ggml tensor type ids */
    GGML_F32 = 0, GGML_F16 = 1, GGML_Q4_0 = 2, GGML_Q8_0 = 8, GGML_Q4_K = 12, GGML_Q6_K = 14, GGML_Q8_K = 15,
};

typedef struct {
    const char *s;
    uint32_t n;
} strv;

typedef struct {
    strv key;
    uint32_t type;        /* GGUF_T_* */
    const uint8_t *val;   /* scalar value, or string (u64 length + bytes) */
    uint32_t arr_type;    /* for arrays */
    uint32_t arr_n;
    const uint8_t *arr;   /* first element of an array */
} gguf_kv;

typedef struct {
    strv name;
    uint32_t type;
    uint32_t n_dims;
    uint32_t ne[4];
    const uint8_t *data;
    size_t nbytes;
} gguf_tensor;

typedef struct {
    const uint8_t *base;
    size_t size;
    uint32_t version;
    uint32_t n_kv, n_tensors;
    gguf_kv *kv;
    gguf_tensor *tensors;
} gguf_file;

int gguf_parse(gguf_file *g, const uint8_t *base, size_t size);
void gguf_free(gguf_file *g);
const gguf_kv *gguf_find(const gguf_file *g, const char *key);
const gguf_tensor *gguf_tensor_find(const gguf_file *g, const char *name);
int gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out);  /* 1 if found and integral */
int gguf_get_f32(const gguf_file *g, const char *key, float *out);
int gguf_get_bool(const gguf_file *g, const char *key, int *out);
int gguf_get_str(const gguf_file *g, const char *key, strv *out);
/* String array iteration: the cursor starts at kv->arr. */
strv gguf_next_str(const uint8_t **cursor);
const char *ggml_type_name(uint32_t type);

/* ---- tensor kernels ---------------------------------------------------------------------------------- */
typedef struct {
    const void *data;
    uint32_t type;
    uint32_t ne0, ne1;   /* row length, number of rows */
    size_t row_bytes;
    uint32_t q8_group;   /* Q8_0 only: > 1 when groups of that many rows are stored block-interleaved */
} mat_t;

float fp16_to_f32(uint16_t h);
uint16_t f32_to_fp16(float f);
int type_block_size(uint32_t type);
size_t type_block_bytes(uint32_t type);
int type_supported(uint32_t type);
void dequant_row(const mat_t *m, uint32_t row, float *out);
int q8_interleave_rows(mat_t *m, uint32_t group);
/* y[t*ne1 + r] = dot(row r of W, x[t*ne0 ...]) for t < T; scratch holds quantized activations. */
void matmul(float *y, const mat_t *w, const float *x, int T, void *scratch);
size_t matmul_scratch_bytes(uint32_t ne0, int T);
float dot_f32(const float *a, const float *b, int n);
float dot_f32_f16(const float *a, const uint16_t *b, int n);
void axpy_f16(float *y, float a, const uint16_t *x, int n);
void axpy_f32(float *y, float a, const float *x, int n);
void attn_scores_f32(float *att, const float *q, const uint8_t *k, size_t stride, uint32_t np, int n, float scale);
void attn_values_f32(float *out, const float *att, float scale, const uint8_t *v, size_t stride, uint32_t np, int n);

/* ---- tokenizer --------------------------------------------------------------------------------------- */
enum { TOK_SPM = 1, TOK_BPE = 2 };
enum { /* token types as stored in tokenizer.ggml.token_type */
    TT_UNDEFINED = 0, TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5, TT_BYTE = 6,
};

typedef struct {
    int kind;
    uint32_t n_vocab;
    strv *text;
    float *score;
    uint8_t *ttype;
    uint8_t *rstrip;        /* strip whitespace after this special token when parsing */
    uint32_t *hash;         /* open addressing: token id + 1, 0 = empty */
    uint32_t hash_mask;
    /* BPE merges: hash of "left right" -> rank */
    strv *merges;
    uint32_t n_merges;
    uint32_t *mhash;
    uint32_t mhash_mask;
    int32_t *special;       /* special tokens, longest first */
    uint32_t n_special;
    int32_t byte_tok[256];  /* SPM byte fallback tokens <0xXX>, -1 if none */
    int32_t bos, eos, unk, eot, eom;
    int add_bos, add_eos, add_space_prefix, ignore_merges;
    uint8_t *eog;           /* per-token end-of-generation flag */
} vocab_t;

int vocab_load(vocab_t *v, const gguf_file *g, uint32_t n_vocab_model);
void vocab_free(vocab_t *v);
int32_t vocab_find(const vocab_t *v, const char *s, uint32_t n);
int32_t vocab_merge_rank(const vocab_t *v, const char *l, uint32_t ln, const char *r, uint32_t rn);
/* GPT-2 byte-level mapping: byte -> printable code point, and back (-1 if cp is not one) */
extern uint32_t byte_to_cp[256];
void init_byte_map(void);
int cp_to_byte(uint32_t cp);
/* Returns the number of ids (may exceed max: then only max were written), or -1 on error. */
int tokenize(const vocab_t *v, const char *text, uint32_t len, int add_special, int parse_special, int32_t *out, int max);
int token_piece(const vocab_t *v, int32_t tok, int special, char *buf, int max);

/* ---- model ------------------------------------------------------------------------------------------- */
enum { ARCH_LLAMA = 1, ARCH_PHI3 = 2 };

typedef struct {
    float *attn_norm, *ffn_norm;
    mat_t wq, wk, wv, wqkv, wo, w_gate, w_up, w_down;
    float *bq, *bk, *bv, *bo;
} layer_t;

typedef struct {
    int arch;
    uint32_t n_vocab, n_embd, n_layer, n_ff, n_head, n_head_kv, head_dim, n_rot, n_ctx_train, n_ctx;
    float eps, rope_base, rope_freq_scale;
    int rope_neox;
    mat_t tok_embd, output;
    float *output_norm;
    float *rope_factors; /* optional per-dimension divisors (rope_freqs.weight) */
    layer_t *layers;
    /* KV cache: [layer][pos][n_head_kv*head_dim], F32, or F16 when F32 would not fit in wasm32 memory */
    void *k_cache, *v_cache;
    int kv_f16;
    size_t kv_elt; /* bytes per cached value */
    uint32_t n_past;
    /* scratch */
    int max_batch;
    float *x, *xb, *xb2, *q, *k, *v, *qkv, *hb, *hb2, *att, *logits;
    void *mscratch;
    char name[128];
} model_t;

int model_load(model_t *m, const gguf_file *g, uint32_t n_ctx);
void model_free(model_t *m);
/* Runs tokens through the model at positions n_past..; logits of the last one land in m->logits. */
int model_eval(model_t *m, const int32_t *toks, uint32_t n, int want_logits);

#endif
