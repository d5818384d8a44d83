"""PixelCNN++'s shifted convolutions and its gated resnet block (Salimans et al. 2017, and
its code).

Instead of masking a k x k kernel, PixelCNN++ pads the input on the top (and left) only, so
that an unmasked kernel never reads below (or right of) its output pixel; a shift by one row
(column) then makes the view strict. Strided versions downsample, and transposed versions
upsample back onto the same grid, keeping every output's view above and left of it.
`GatedResnet`, the block both streams are made of, is PixelSNAIL's residual block too.
"""
from .. import functional as F
from .. import nn
from ..ops import concatenate, elu, pad, sigmoid, split
from .masked import make_conv2d


def shift_right(x):
    """Column j gets column j - 1 (zeros in column 0): features of columns <= j - 1 only."""
    return pad(x[:, :, :, :-1], ((0, 0), (0, 0), (0, 0), (1, 0)))


class _ShiftedConv(nn.Module):
    """What the four shifted convolutions share: a kernel (kh, kw), with kw odd where the
    window is centred on the column, and a stride, both checked; and the weight and bias of
    a `layer` (Conv2d, or ConvTranspose2d for the upsampling ones) initialised from
    `generator` as torch initialises one."""

    layer, centred = nn.Conv2d, True

    def __init__(self, in_channels, out_channels, kernel_size, stride, generator):
        super().__init__()
        self.kernel_size, self.stride = tuple(int(k) for k in kernel_size), int(stride)
        kernel_size, stride = self.kernel_size, self.stride
        if len(kernel_size) != 2 or min(kernel_size) < 1 or stride < 1 or \
                (self.centred and kernel_size[1] % 2 == 0):
            width = "kw odd (centred on the column)" if self.centred else "kw >= 1"
            raise ValueError(f"{type(self).__name__}: expected a kernel (kh, kw) with kh >= 1 "
                             f"and {width}, and a stride >= 1; got kernel_size={kernel_size}, "
                             f"stride={stride}")
        conv = self.layer(in_channels, out_channels, kernel_size)
        conv.reset_parameters(generator)
        self.weight, self.bias = conv.weight, conv.bias


class DownShiftedConv2d(_ShiftedConv):
    """A kh x kw convolution (kw odd) padded kh - 1 rows on top and kw // 2 columns on each
    side, so output (r, c) sees input rows r - kh + 1 .. r and columns c - kw//2 .. c + kw//2:
    never a row below its own. With stride s, output (r, c) sits at input (s r, s c) and sees
    rows s r - kh + 1 .. s r; the output has ceil(H / s) x ceil(W / s) pixels."""

    def __init__(self, in_channels, out_channels, kernel_size=(2, 3), stride=1,
                 generator=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, generator)

    def forward(self, x):
        kh, kw = self.kernel_size
        x = pad(x, ((0, 0), (0, 0), (kh - 1, 0), (kw // 2, kw // 2)))
        return F.conv2d(x, self.weight, self.bias, stride=self.stride)


class DownRightShiftedConv2d(_ShiftedConv):
    """A kh x kw convolution padded kh - 1 rows on top and kw - 1 columns on the left, so
    output (r, c) sees input rows r - kh + 1 .. r and columns c - kw + 1 .. c: never below
    its row, nor right of its column. With stride s, output (r, c) sits at input (s r, s c)
    and sees the window ending there."""

    centred = False

    def __init__(self, in_channels, out_channels, kernel_size=(2, 2), stride=1,
                 generator=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, generator)

    def forward(self, x):
        kh, kw = self.kernel_size
        x = pad(x, ((0, 0), (0, 0), (kh - 1, 0), (kw - 1, 0)))
        return F.conv2d(x, self.weight, self.bias, stride=self.stride)


def _crop(name, y, rows, cols):
    if rows.stop > y.shape[2] or cols.stop > y.shape[3]:
        raise ValueError(f"{name}: cannot crop rows {rows.start}..{rows.stop - 1} and columns "
                         f"{cols.start}..{cols.stop - 1} from the upsampled {y.shape[2:]}; "
                         f"the input is too small for that output size")
    return y[:, :, rows, cols]


class DownShiftedConvTranspose2d(_ShiftedConv):
    """The upsampling partner of a strided DownShiftedConv2d: input (i, j) adds onto output
    rows s i .. s i + kh - 1 and columns s j - kw//2 .. s j + kw//2, so output row r only
    gets inputs of rows <= r / s, which (from the strided conv) saw rows above s i <= r.
    `forward(x, size)` crops to `size` = (H, W), the size before downsampling."""

    layer = nn.ConvTranspose2d

    def __init__(self, in_channels, out_channels, kernel_size=(2, 3), stride=2,
                 generator=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, generator)

    def forward(self, x, size):
        y = F.conv_transpose2d(x, self.weight, self.bias, stride=self.stride)
        half = self.kernel_size[1] // 2
        return _crop("DownShiftedConvTranspose2d", y, slice(0, size[0]),
                     slice(half, half + size[1]))


class DownRightShiftedConvTranspose2d(_ShiftedConv):
    """The upsampling partner of a strided DownRightShiftedConv2d: input (i, j) adds onto
    output rows s i .. s i + kh - 1 and columns s j .. s j + kw - 1, so output (r, c) only
    gets inputs at or above-left of (r / s, c / s). `forward(x, size)` crops to (H, W)."""

    layer, centred = nn.ConvTranspose2d, False

    def __init__(self, in_channels, out_channels, kernel_size=(2, 2), stride=2,
                 generator=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, generator)

    def forward(self, x, size):
        y = F.conv_transpose2d(x, self.weight, self.bias, stride=self.stride)
        return _crop("DownRightShiftedConvTranspose2d", y, slice(0, size[0]),
                     slice(0, size[1]))


def concat_elu(x):
    """ELU of [x, -x] along the channels, the nonlinearity of the PixelCNN++ and PixelSNAIL
    code: both signs of every feature pass through (an ELU alone flattens the negative
    side). Doubles the channels."""
    return elu(concatenate([x, -x], axis=1))


class GatedResnet(nn.Module):
    """The gated resnet block of PixelCNN++ (Salimans et al. 2017, figure 2, as in the
    paper's code), which PixelSNAIL's residual blocks are made of too:

        c = conv(concat_elu(x)) [+ nin(concat_elu(aux))]
        [a, b] = conv(dropout(concat_elu(c))),       x' = x + a . sigmoid(b)

    `conv(in_channels, out_channels, generator)` makes the block's convolutions, which keep
    the view of its stream: shifted convolutions in PixelCNN++, type-B masked ones in
    PixelSNAIL. nin is a 1x1 convolution of an auxiliary input (the other stream, short-cuts,
    attention output), which must already see only what this stream may."""

    def __init__(self, channels, conv, aux_channels=0, dropout=0.0, generator=None):
        super().__init__()
        self.conv_in = conv(2 * channels, channels, generator=generator)
        self.aux = make_conv2d(2 * aux_channels, channels, 1, generator) if aux_channels else None
        self.conv_out = conv(2 * channels, 2 * channels, generator=generator)
        self.dropout = dropout

    def forward(self, x, aux=None, generator=None):
        h = self.conv_in(concat_elu(x))
        if aux is not None:
            h = h + self.aux(concat_elu(aux))
        h = F.dropout(concat_elu(h), self.dropout, self.training, generator)
        a, b = split(self.conv_out(h), 2, axis=1)
        return x + a * sigmoid(b)
