print("tinymixer")
