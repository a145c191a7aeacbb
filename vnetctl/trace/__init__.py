"""`vnetctl trace SRC DST`: where a frame goes, hop by hop, across the hosts it crosses
(path: the walk; endpoints: SRC and DST; layers, overlay, ovs_layers: each layer's
decision; text: the text form). `probe` (an active check) and `html` (a picture) are
separate modules, imported only when asked for."""
