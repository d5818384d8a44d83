"""Score and energy models' shared pieces (the models are minigen/models/score.py, ebm.py
and jem.py):

    langevin.py   annealed Langevin dynamics (NCSN) and SGLD on an energy, both stopping
                  with LangevinDiverged at the first non-finite step
    buffer.py     the replay buffer of SGLD chains (Du & Mordatch)
    losses.py     denoising score matching; contrastive divergence with the L2 regulariser
    networks.py   the score and energy networks
    model.py      the energy models' base (ebm, jem) and the scaling, metrics and
                  pictures the score model shares with it
    pictures.py   the score field on 2-D data
"""
