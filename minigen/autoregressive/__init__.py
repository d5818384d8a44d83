"""The pieces of the autoregressive families, p(x) = prod_i p(x_i | x_<i): the models of
minigen.models (made, pixelcnn, gated-pixelcnn, pixelcnn++, pixelsnail, wavenet,
transformer, charrnn) are built from these.

    masked.py           masked layers: MADE's masks and MaskedLinear; MaskedConv2d (PixelCNN
                        masks A and B, colour groups) and ConvAtPixel (one output pixel at a
                        time, for cached sampling)
    gated.py            the PixelCNN blocks: ResidualBlock, the Gated PixelCNN's GatedLayer
                        (vertical and horizontal stacks, gate, shift_down), ClassBias,
                        OutputHead
    shifted.py          PixelCNN++'s shifted convolutions (down and down-right, strided and
                        transposed), shift_right, concat_elu and GatedResnet
    likelihood.py       the likelihood head of discrete values: Bernoulli logits for binary
                        data, a categorical over K levels otherwise
    pixel_model.py      PixelModel, the base of the PixelCNNs (likelihood, naive and cached
                        raster-order sampling), sample_raster and receptive_field
    sequence_model.py   SequenceModel, the base of the sequence models (likelihood, naive
                        and cached step-by-step sampling, text windows)
    sequence_layers.py  WaveNet's CausalConv1d and GatedResidualBlock; the Transformer's
                        Dense, Positions, SelfAttention (causal or not) and
                        TransformerBlock (the MAE's too, with causal=False)
    recurrent.py        LSTM and GRU cells and a stack of them run over time (char-RNN)
    cache.py            SamplingCache, what cached sampling keeps from one step to the next
"""
