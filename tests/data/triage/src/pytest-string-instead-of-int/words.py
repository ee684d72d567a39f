def count_words(text):
    return str(len(text.split()))
