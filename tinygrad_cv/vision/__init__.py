"""Algorithms on images: loading and saving (image), and the methods built on pretrained networks."""
