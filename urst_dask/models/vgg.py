"""The normalised VGG-19 of the WCT/AdaIN line of work, as upstream ``nn.Sequential`` layouts.

Used by the original WCT (levels 1-5), AdaIN (relu4_1) and LinearWCT (layer names).
Encoder: a 1x1 colour conv, then reflection-padded 3x3 convs and 2x2 ``ceil_mode`` max pools;
decoder: the mirror, with 2x nearest upsampling and a final conv to RGB without ReLU.
"""

from __future__ import annotations

from torch import nn

# VGG-19 body; "P" is a 2x2 max pool.  Each conv name maps to its output width.
VGG19 = ("11", "12", "P", "21", "22", "P", "31", "32", "33", "34", "P",
         "41", "42", "43", "44", "P", "51", "52", "53", "54")
VGG19_WIDTH = {"11": 64, "12": 64, "21": 128, "22": 128, "31": 256, "32": 256, "33": 256, "34": 256,
               "41": 512, "42": 512, "43": 512, "44": 512, "51": 512, "52": 512, "53": 512, "54": 512}


def vgg_body(last: str) -> tuple[str, ...]:
    """The VGG-19 layer names up to and including conv ``last`` (e.g. "41" for relu4_1)."""
    return VGG19[: VGG19.index(last) + 1]


def vgg_encoder_layers(last: str) -> nn.Sequential:
    """Normalised VGG-19 up to relu{last}, laid out as the upstream ``nn.Sequential``.

    Index 0 is the 1x1 colour conv; each conv is ``[ReflectionPad, Conv3x3, ReLU]`` and each
    pool one ``MaxPool2d(2, 2, ceil_mode=True)``, so relu1_1 is index 3, relu2_1 10,
    relu3_1 17, relu4_1 30, relu5_1 43.
    """
    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)]  # colour / mean handling
    cin = 3
    for name in vgg_body(last):
        if name == "P":
            layers.append(nn.MaxPool2d(2, 2, 0, ceil_mode=True))
            continue
        cout = VGG19_WIDTH[name]
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), nn.ReLU(inplace=True)]  # relu{name}
        cin = cout
    return nn.Sequential(*layers)


def vgg_decoder_layers(last: str) -> nn.Sequential:
    """Mirror of :func:`vgg_encoder_layers`: relu{last} features -> RGB (unclamped).

    Each conv inverts one encoder conv (output width = that conv's input width) and is
    ``[ReflectionPad, Conv3x3, ReLU]``, except the last (to RGB), which has no ReLU; each
    pool becomes a 2x nearest upsampling.
    """
    body = vgg_body(last)
    inputs: dict[str, int] = {}
    cin = 3
    for name in body:
        if name != "P":
            inputs[name] = cin
            cin = VGG19_WIDTH[name]
    layers: list[nn.Module] = []
    for name in reversed(body):
        if name == "P":
            layers.append(nn.Upsample(scale_factor=2.0, mode="nearest"))
            continue
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(VGG19_WIDTH[name], inputs[name], 3)]
        if name != "11":
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)
