print("xt")
