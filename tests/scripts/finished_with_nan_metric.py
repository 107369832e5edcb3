"""A loop whose loss falls and stays finite while its F1 is undefined (no positive prediction: a
division by zero in the metric), printed as nan each epoch; it finishes its 5 epochs and exits 0."""

loss = 0.5
for epoch in range(1, 6):
    loss *= 0.7
    print(f"epoch {epoch}/5 - loss: {loss:.4f} - val_f1: nan", flush=True)
print("training finished")
