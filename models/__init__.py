"""Networks with names, weights and preprocessing: VGG16/VGG19 (vgg.py) and autoencoders (autoencoder.py)."""
