# ~/.profile from the image
