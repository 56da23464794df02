/* A C submission: predicts the training mean of the label (prevalence for binary tasks,
 * mean for regression). Build: see guest/include/medarena.h. */
#define MEDARENA_IMPLEMENT_ALLOCATOR
#include "../../include/medarena.h"

static double mean = 0.0;
static const char fitted[] = "c mean: fitted";

MEDARENA_EXPORT("medarena_fit") int32_t medarena_fit(medarena_call *call) {
    const medarena_table *labels = medarena_table_at(call->labels);
    uint32_t column = medarena_find(labels, "label");
    if (column == labels->n_columns) return 2;
    const double *y = medarena_f64(labels, column);
    double sum = 0.0;
    for (uint32_t i = 0; i < labels->n_rows; i++) sum += y[i];
    mean = labels->n_rows ? sum / labels->n_rows : 0.0;
    medarena_debug(call, fitted, sizeof fitted - 1);
    return 0;
}

MEDARENA_EXPORT("medarena_predict") int32_t medarena_predict(medarena_call *call) {
    double *out = (double *)(uintptr_t)medarena_alloc(call->n_outputs * 8u, 8u);
    if (!out) return 2;
    for (uint32_t i = 0; i < call->n_outputs; i++) out[i] = mean;
    call->out_ptr = (uint32_t)(uintptr_t)out;
    call->out_len = call->n_outputs;
    return 0;
}
