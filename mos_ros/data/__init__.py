"""The data engine: real photos from registry packages, and the scenes and labels made of them."""
