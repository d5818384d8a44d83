// Layer normalisation of each row of an (N, D) matrix, without the affine part, and its
// backward: kernels/layer_norm/cuda.py launches these; the formulas are cpu.py's.
//
// A row belongs to `width` threads of a block: one warp for short rows (a block then takes
// blockDim.x / 32 rows), the whole block for long ones, so that neither a short row leaves
// most of a block idle nor a long one queues on 32 threads. Each thread adds a strided
// share of the row; row_sum adds the shares. Sums are in double and rounded once to `real`,
// as in cpu.py, so float32 statistics do not drift with D. The mean and the variance take
// a pass over the row each, as in cpu.py, and xhat a third; the later ones read the row
// again, mostly from cache.
//
// Compiled with -Dreal=float or -Dreal=double (kernels/cudasource.py).

#define FULL_MASK 0xffffffffu
#define WARP 32

// The sum of v over the `width` threads that share a row (a warp, or the whole block),
// returned to all of them. The xor butterfly leaves every lane with the same bits: at each
// step two partners add the same two values, and IEEE addition commutes. Where width is
// the block, every thread of the block must call this, as often as the others: it waits
// at the block's barriers.
__device__ double row_sum(double v, int width, double* partial) {
    for (int offset = WARP / 2; offset > 0; offset /= 2) {
        v += __shfl_xor_sync(FULL_MASK, v, offset);
    }
    if (width == WARP) {
        return v;
    }
    int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP;
    if (lane == 0) {
        partial[warp] = v;
    }
    __syncthreads();
    v = lane < static_cast<int>(blockDim.x / WARP) ? partial[lane] : 0.0;
    for (int offset = WARP / 2; offset > 0; offset /= 2) {
        v += __shfl_xor_sync(FULL_MASK, v, offset);
    }
    __syncthreads();  // every warp has read `partial` before the next call writes it
    return v;
}

// xhat = (x - mean) rstd and rstd = 1 / sqrt(var + eps) for each row of x (rows, cols).
// eps is a double, as cpu.py adds it to the float64 variance.
extern "C" __global__ void layer_norm_forward(const real* x, real* xhat, real* rstd,
                                              int rows, int cols, int width, double eps) {
    __shared__ double partial[WARP];
    int row = static_cast<int>(blockIdx.x) * (static_cast<int>(blockDim.x) / width)
              + static_cast<int>(threadIdx.x) / width;
    int first = static_cast<int>(threadIdx.x) % width;
    // the threads of a row leave together, so none that a row_sum waits for is missing;
    // where a row takes the whole block, the grid has a block for each row
    if (row >= rows) {
        return;
    }
    const real* in = x + static_cast<long long>(row) * cols;
    double total = 0.0;
    for (int j = first; j < cols; j += width) {
        total += static_cast<double>(in[j]);
    }
    double mean = row_sum(total, width, partial) / cols;
    double squares = 0.0;
    for (int j = first; j < cols; j += width) {
        double d = static_cast<double>(in[j]) - mean;
        squares += d * d;
    }
    double variance = row_sum(squares, width, partial) / cols;
    real m = static_cast<real>(mean);
    real r = static_cast<real>(1.0 / sqrt(variance + eps));
    if (first == 0) {
        rstd[row] = r;
    }
    real* out = xhat + static_cast<long long>(row) * cols;
    for (int j = first; j < cols; j += width) {
        out[j] = (in[j] - m) * r;
    }
}

// dx = rstd (g - mean(g) - xhat mean(g xhat)) for each row, from forward's xhat and rstd.
extern "C" __global__ void layer_norm_backward(const real* xhat, const real* rstd,
                                               const real* g, real* dx, int rows, int cols,
                                               int width) {
    __shared__ double partial[WARP];
    int row = static_cast<int>(blockIdx.x) * (static_cast<int>(blockDim.x) / width)
              + static_cast<int>(threadIdx.x) / width;
    int first = static_cast<int>(threadIdx.x) % width;
    if (row >= rows) {  // as in layer_norm_forward
        return;
    }
    long long start = static_cast<long long>(row) * cols;
    double total = 0.0, weighted = 0.0;
    for (int j = first; j < cols; j += width) {
        double gj = static_cast<double>(g[start + j]);
        total += gj;
        weighted += gj * static_cast<double>(xhat[start + j]);
    }
    real mean_g = static_cast<real>(row_sum(total, width, partial) / cols);
    real mean_gx = static_cast<real>(row_sum(weighted, width, partial) / cols);
    real r = rstd[row];
    for (int j = first; j < cols; j += width) {
        dx[start + j] = r * (g[start + j] - mean_g - xhat[start + j] * mean_gx);
    }
}
