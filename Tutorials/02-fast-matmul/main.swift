print("lesson 02")
