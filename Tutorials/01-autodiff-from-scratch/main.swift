print("lesson 01")
