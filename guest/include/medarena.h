/* medarena submission ABI, version 2 (see sandbox/ABI.md). Header-only, freestanding C:
 * compile with  clang --target=wasm32-unknown-unknown -nostdlib -O2
 *               -Wl,--no-entry -Wl,--export-dynamic -o model.wasm model.c
 * A submission has zero imports: no libc, no printf; use medarena_debug(). */
#ifndef MEDARENA_H
#define MEDARENA_H

#include <stdint.h>
#include <stddef.h>

#define MEDARENA_ABI_VERSION 2u
#define MEDARENA_TABLE_MAGIC 0x5441444Du /* "MDAT" */

enum medarena_task_kind {
    MEDARENA_ANALYZE = 0,
    MEDARENA_BINARY = 1,
    MEDARENA_MULTICLASS = 2,
    MEDARENA_REGRESSION = 3,
    /* one risk score per row (higher means an earlier event), or, when the predict call
     * has a grid (grid_len > 0), one survival curve per row: see medarena_call.grid */
    MEDARENA_SURVIVAL = 4,
};

enum medarena_column_kind {
    MEDARENA_NUMBER = 1,   /* double, NaN missing */
    MEDARENA_CATEGORY = 2, /* uint32_t code, 0xFFFFFFFF missing */
    MEDARENA_BOOLEAN = 3,  /* uint8_t 0/1, 2 missing */
    MEDARENA_DATE = 4,     /* double days since 1970-01-01, NaN missing */
};

#define MEDARENA_MISSING_CODE 0xFFFFFFFFu
#define MEDARENA_MISSING_BOOL 2u

/* The 64-byte call record the host passes to every entry point. */
typedef struct {
    uint32_t abi_version;
    uint32_t task_kind;
    uint32_t n_classes;
    uint32_t n_outputs;
    uint64_t seed;
    uint32_t features;  /* address of a medarena_table */
    uint32_t labels;    /* address of a medarena_table (fit only) */
    uint32_t out_ptr;   /* set by the guest: const double[out_len] */
    uint32_t out_len;   /* set by the guest */
    uint32_t debug_ptr; /* set by the guest (optional): UTF-8 text */
    uint32_t debug_len; /* set by the guest (optional) */
    /* Version 2, survival predict of a competition scored on survival curves only (else 0):
     * the address of grid_len doubles t_0 < t_1 < ... (finite, > 0). Then
     * n_outputs = rows * grid_len and out[i * grid_len + j] = S(t_j | row i), the probability
     * of no event by t_j: in [0, 1] and non-increasing along each row (1e-9 tolerance). */
    uint32_t grid;     /* address of const double[grid_len] */
    uint32_t grid_len;
    uint32_t reserved[2];
} medarena_call;

typedef struct {
    uint32_t kind;
    uint32_t name_offset;
    uint32_t name_len;
    uint32_t data_offset;
    uint32_t n_levels;
    uint32_t levels_offset; /* n_levels pairs of uint32_t (offset, len) */
    uint32_t reserved[2];
} medarena_column;

typedef struct {
    uint32_t magic;
    uint32_t n_rows;
    uint32_t n_columns;
    uint32_t total_bytes;
    medarena_column columns[]; /* n_columns entries */
} medarena_table;

/* Offsets inside a table block are relative to the block's start. */
static inline const void *medarena_at(const medarena_table *t, uint32_t offset) {
    return (const char *)t + offset;
}
static inline const medarena_table *medarena_table_at(uint32_t address) {
    return (const medarena_table *)(uintptr_t)address;
}
static inline const double *medarena_f64(const medarena_table *t, uint32_t column) {
    return (const double *)medarena_at(t, t->columns[column].data_offset);
}
static inline const uint32_t *medarena_codes(const medarena_table *t, uint32_t column) {
    return (const uint32_t *)medarena_at(t, t->columns[column].data_offset);
}
static inline const uint8_t *medarena_bools(const medarena_table *t, uint32_t column) {
    return (const uint8_t *)medarena_at(t, t->columns[column].data_offset);
}
/* Finds a column by name; returns n_columns when absent. */
static inline uint32_t medarena_find(const medarena_table *t, const char *name) {
    for (uint32_t c = 0; c < t->n_columns; c++) {
        const char *n = (const char *)medarena_at(t, t->columns[c].name_offset);
        uint32_t len = t->columns[c].name_len, i = 0;
        while (i < len && name[i] && name[i] == n[i]) i++;
        if (i == len && name[i] == 0) return c;
    }
    return t->n_columns;
}

/* Exports every submission defines (the allocator below is a simple bump allocator). */
#define MEDARENA_EXPORT(name) __attribute__((export_name(name)))

#ifdef MEDARENA_IMPLEMENT_ALLOCATOR
extern unsigned char __heap_base;
static uintptr_t medarena_heap = 0;
MEDARENA_EXPORT("medarena_abi_version") uint32_t medarena_abi_version(void) { return MEDARENA_ABI_VERSION; }
MEDARENA_EXPORT("medarena_alloc") uint32_t medarena_alloc(uint32_t size, uint32_t align) {
    if (!medarena_heap) medarena_heap = (uintptr_t)&__heap_base;
    if (align < 8) align = 8;
    uintptr_t p = (medarena_heap + align - 1) & ~(uintptr_t)(align - 1);
    uintptr_t end = p + size;
    uintptr_t have = __builtin_wasm_memory_size(0) * 65536u;
    if (end > have) {
        uintptr_t pages = (end - have + 65535u) / 65536u;
        if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) return 0;
    }
    medarena_heap = end;
    return (uint32_t)p;
}
/* Debug text: keep the pointer valid for the rest of the call. */
static inline void medarena_debug(medarena_call *call, const char *text, uint32_t len) {
    call->debug_ptr = (uint32_t)(uintptr_t)text;
    call->debug_len = len;
}
#endif

#endif /* MEDARENA_H */
