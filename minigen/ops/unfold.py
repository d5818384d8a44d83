"""im2col and col2im as a pair of engine ops: `Unfold` lays every kernel-sized window of an
image out as a column, and `Fold`, its adjoint, adds each column back onto the window it
came from. Each is the other's backward, so derivatives of every order follow. Pooling
(minigen.functional) reduces the unfolded windows.
"""
from .. import backend
from ..autograd import Function
from ..kernels.conv2d import reference as conv2d_reference


class Unfold(Function):
    """im2col: x (N, C, H, W) -> columns (C*kh*kw, N*oh*ow), one column per window.

    Rows run over (channel, kernel row, kernel column) and columns over (image, output row,
    output column), so a convolution is one matrix multiply, weight (O, C*kh*kw) @ columns,
    which BLAS runs as a single large product rather than one small one per image.
    """

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation):
        xp = backend.xp_of(x)
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel_size, stride, padding, dilation
        ctx.params = dict(kernel_size=kernel_size, stride=stride, padding=padding,
                          dilation=dilation)
        if ph or pw:
            x = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
        if x.shape[2] < span[0] or x.shape[3] < span[1]:
            raise ValueError(f"a {kh}x{kw} kernel with dilation {dilation} spans {span}, "
                             f"more than the padded input's {x.shape[2:]}")
        # a strided view of every window at every position; the reshape makes the one copy
        view = xp.lib.stride_tricks.sliding_window_view(x, span, axis=(2, 3))
        view = view[:, :, ::sh, ::sw, ::dh, ::dw]  # (N, C, oh, ow, kh, kw)
        n, c, oh, ow = view.shape[:4]
        return view.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * oh * ow)

    @staticmethod
    def backward(ctx, g):
        shape = ctx.inputs[0].shape
        return Fold.apply(g, output_size=shape[2:], **ctx.params)


class Fold(Function):
    """col2im, the adjoint of Unfold: columns (C*kh*kw, N*oh*ow) -> (N, C, H, W), each
    column added onto its window; where windows overlap the values add up."""

    @staticmethod
    def forward(ctx, cols, output_size, kernel_size, stride, padding, dilation):
        xp = backend.xp_of(cols)
        (h, w), (kh, kw), (sh, sw) = output_size, kernel_size, stride
        (ph, pw), (dh, dw) = padding, dilation
        ctx.params = dict(kernel_size=kernel_size, stride=stride, padding=padding,
                          dilation=dilation)
        oh, ow = conv2d_reference.output_size(output_size, kernel_size, stride, padding,
                                              dilation)
        rows, length = cols.shape
        if oh < 1 or ow < 1 or rows % (kh * kw) or length % (oh * ow):
            raise ValueError(f"columns of shape {cols.shape} do not fit output size "
                             f"{tuple(output_size)}: expected (C*{kh * kw}, N*{oh * ow}) for "
                             f"a {kh}x{kw} kernel, stride {stride}, padding {padding}, "
                             f"dilation {dilation}")
        c, n = rows // (kh * kw), length // (oh * ow)
        cols = cols.reshape(c, kh, kw, n, oh, ow)
        out = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
        by_channel = out.transpose(1, 0, 2, 3)  # a view in the columns' (C, N) order
        # one slice-add per kernel tap: within a tap no two windows hit the same pixel
        for i in range(kh):
            for j in range(kw):
                by_channel[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                           j * dw:j * dw + sw * (ow - 1) + 1:sw] += cols[:, i, j]
        return out[:, :, ph:ph + h, pw:pw + w]

    @staticmethod
    def backward(ctx, g):
        return Unfold.apply(g, **ctx.params)
