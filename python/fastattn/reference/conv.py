"""conv2d and conv_transpose2d as the formulas read (NCHW, PyTorch's semantics), one kernel
tap at a time: each tap (u, v) multiplies a strided window of the (zero-padded) input by the
weights of that tap."""
import numpy as np

from .activation import activate


def _pair(v):
    return (v, v) if np.isscalar(v) else tuple(v)


def _conv_padding(padding, kernel, dilation):
    """((top, bottom), (left, right)). "same": total d (k - 1) per axis, the odd one extra
    at the bottom / right (as PyTorch); "valid": none."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        return tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                     for k, d in zip(kernel, dilation))
    ph, pw = _pair(padding)
    return (ph, ph), (pw, pw)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, activation=None,
           residual=None):
    """y[n, o, i, j] = act(sum_{c, u, v} w[o, c, u, v] xp[n, g C' + c, i sh + u dh, j sw + v dw]
    + bias[o]) + residual[n, o, i, j], xp = x zero-padded, g = o // (Cout / groups),
    C' = C / groups."""
    x, weight = np.asarray(x), np.asarray(weight)
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    cout, cg, kh, kw = weight.shape
    pads = _conv_padding(padding, (kh, kw), (dh, dw))
    xp = np.pad(x, ((0, 0), (0, 0)) + pads)
    n, _, hp, wp = xp.shape
    oh, ow = (hp - dh * (kh - 1) - 1) // sh + 1, (wp - dw * (kw - 1) - 1) // sw + 1
    mg = cout // groups
    y = np.zeros((n, cout, oh, ow), dtype=np.result_type(x, weight))
    for g in range(groups):
        xg, wg = xp[:, g * cg:(g + 1) * cg], weight[g * mg:(g + 1) * mg]
        for u in range(kh):
            for v in range(kw):
                window = xg[:, :, u * dh:u * dh + sh * (oh - 1) + 1:sh,
                            v * dw:v * dw + sw * (ow - 1) + 1:sw]          # (N, C', OH, OW)
                y[:, g * mg:(g + 1) * mg] += np.einsum("ncij,oc->noij", window, wg[:, :, u, v])
    if bias is not None:
        y = y + np.asarray(bias)[:, None, None]
    if activation is not None:
        y = activate(y, activation)
    if residual is not None:
        y = y + residual
    return y


def conv_transpose2d(x, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Each input pixel (a, b) scatters x[n, c, a, b] w[c, o', u, v] to the output pixel
    (a sh + u dh - ph, b sw + v dw - pw) of channel o = g Cout' + o'; the full (uncropped)
    output is cropped by the padding, output_padding adds rows / columns at the bottom / right.
    weight is (C, Cout / groups, kh, kw)."""
    x, weight = np.asarray(x), np.asarray(weight)
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    (ph, pw), (oph, opw) = _pair(padding), _pair(output_padding)
    n, c, h, w = x.shape
    _, mg, kh, kw = weight.shape
    cg = c // groups
    full = np.zeros((n, mg * groups, (h - 1) * sh + dh * (kh - 1) + 1 + oph,
                     (w - 1) * sw + dw * (kw - 1) + 1 + opw), dtype=np.result_type(x, weight))
    for g in range(groups):
        xg, wg = x[:, g * cg:(g + 1) * cg], weight[g * cg:(g + 1) * cg]
        for u in range(kh):
            for v in range(kw):
                full[:, g * mg:(g + 1) * mg, u * dh:u * dh + sh * (h - 1) + 1:sh,
                     v * dw:v * dw + sw * (w - 1) + 1:sw] += np.einsum("ncab,co->noab", xg,
                                                                       wg[:, :, u, v])
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    ow = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    y = full[:, :, ph:ph + oh, pw:pw + ow]
    if bias is not None:
        y = y + np.asarray(bias)[:, None, None]
    return y
