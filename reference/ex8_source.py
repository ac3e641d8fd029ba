# The one source of Exercise 8: `python -m reference.build` turns it into
# reference/ex8_solution.ipynb, reference/solution.py and student_template/ex8.ipynb.
#
# Cells start with `# %%`; `# %% [markdown]` cells hold markdown as comment lines.
# Options after the marker: `tags=a,b` (notebook cell tags; `module` also copies the cell into
# reference/solution.py) and `task=<id>` (the task the cell belongs to, kept in the metadata).
# `### BEGIN SOLUTION` / `### END SOLUTION` enclose what the student template leaves out.

# %% [markdown]
# # Exercise 8 - Recurrent Neural Networks
#
# This exercise is based on https://github.com/leriomaggio/deep-learning-keras-tensorflow,
# https://github.com/keras-team/keras/blob/master/examples/imdb_lstm.py and
# https://machinelearningmastery.com/sequence-classification-lstm-recurrent-neural-networks-python-keras/
#
# A recurrent neural network (RNN) is a class of artificial neural network where connections
# between units form a directed cycle. This creates an internal state of the network which
# allows it to exhibit dynamic temporal behavior.
#
# Arguments of Keras' recurrent layers:
#
# - `units`: positive integer, dimensionality of the output space.
# - `activation`: activation function to use. If you pass `None`, no activation is applied
#   (ie. "linear" activation: `a(x) = x`).
# - `use_bias`: whether the layer uses a bias vector.
# - `kernel_initializer`, `recurrent_initializer`, `bias_initializer`: initializers for the
#   input weights, the recurrent weights and the bias.
# - `kernel_regularizer`, `recurrent_regularizer`, `bias_regularizer`, `activity_regularizer`:
#   regularizers for the same, and for the layer's output.
# - `kernel_constraint`, `recurrent_constraint`, `bias_constraint`: constraints for the same.
# - `dropout`: float between 0 and 1. Fraction of the units to drop for the linear
#   transformation of the inputs.
# - `recurrent_dropout`: float between 0 and 1. Fraction of the units to drop for the linear
#   transformation of the recurrent state.
#
# **Backprop Through time.** Contrary to feed-forward neural networks, the RNN is characterized
# by the ability of encoding longer past information, thus very suitable for sequential models.
# The BPTT extends the ordinary BP algorithm to suit the recurrent neural architecture.
#
# *This notebook is written for Keras 3 (TensorFlow 2.21). Keep the names of the functions and
# variables the tasks ask for: the grader looks for them.*

# %% tags=parameters,module
# Parameters: the grader replaces these values with its profile's (a cell after this one).
TOP_WORDS = 5000  # keep the 5,000 most frequent words
MAX_REVIEW_LENGTH = 500  # pad or truncate every review to 500 words
EMBEDDING_DIM = 32  # each word becomes a 32-dimensional vector
TRAIN_SAMPLES = None  # None: all 25,000 training reviews, split 70/30 into train and validation
TEST_SAMPLES = 10000  # test reviews used for evaluation
EPOCHS = 3
BATCH_SIZE = 64
MOVIE_SAMPLES = 1200  # generated movies for the bonus task
MOVIE_FRAMES = 15
MOVIE_EPOCHS = 20
SEED = 7

# %% tags=module
import numpy as np
import keras
from keras import layers
from matplotlib import pyplot as plt
from sklearn.metrics import (accuracy_score, classification_report, confusion_matrix,
                             precision_score, recall_score)
from sklearn.model_selection import train_test_split

from grader import check  # check("task1"): what `grade` would say about a builder, in seconds

# %%
keras.utils.set_random_seed(SEED)  # the same initial weights and data order on every run

# %% [markdown]
# ## 1.1 IMDB sentiment classification task
#
# The problem that we will use to demonstrate sequence learning in this tutorial is the IMDB
# movie review sentiment classification problem. Each movie review is a variable sequence of
# words and the sentiment of each movie review must be classified.
#
# The Large Movie Review Dataset (often referred to as the IMDB dataset) contains 25,000
# highly-polar movie reviews (good or bad) for training and the same amount again for testing.
# The problem is to determine whether a given movie review has a positive or negative
# sentiment. http://ai.stanford.edu/~amaas/data/sentiment/
#
# The data was collected by Stanford researchers and was used in a 2011 paper
# (http://ai.stanford.edu/~amaas/papers/wvSent_acl2011.pdf) where a split of 50-50 of the data
# was used for training and test. An accuracy of 88.89% was achieved.
#
# Keras provides access to the IMDB dataset built-in. The `imdb.load_data()` function allows you
# to load the dataset in a format that is ready for use in neural network and deep learning
# models. Here we use `grader.data.load_imdb`, which returns exactly what
# `keras.datasets.imdb.load_data` returns and also works offline from a configured copy of the
# reviews (the environment variable `EX8_IMDB`).
#
# The words have been replaced by integers that indicate the ordered frequency of each word in
# the dataset. The sentences in each review are therefore comprised of a sequence of integers.
#
# ### 1.1.1 Word Embedding
#
# We will map each movie review into a real vector domain, a popular technique when working
# with text called word embedding. This is a technique where words are encoded as real-valued
# vectors in a high dimensional space, where the similarity between words in terms of meaning
# translates to closeness in the vector space.
#
# Keras provides a convenient way to convert positive integer representations of words into a
# word embedding by an Embedding layer.
#
# We will map each word onto a 32 length real valued vector. We will also limit the total number
# of words that we are interested in modeling to the 5000 most frequent words, and zero out the
# rest. Finally, the sequence length (number of words) in each review varies, so we will
# constrain each review to be 500 words, truncating long reviews and pad the shorter reviews
# with zero values.
#
# ### 1.1.2 Data Preparation - IMDB
#
# We need to load the IMDB dataset. We are constraining the dataset to the top 5,000 words. We
# also split the dataset into train (70%) and validation (30%) sets.
#
# Next, we need to truncate and pad the input sequences so that they are all the same length for
# modeling. The model will learn the zero values carry no information so indeed the sequences
# are not the same length in terms of content, but same length vectors is required to perform
# the computation in Keras.

# %% tags=data
from grader.data import load_imdb

(X_all, y_all), (X_test, y_test) = load_imdb(num_words=TOP_WORDS)
X_all, y_all = X_all[:TRAIN_SAMPLES], y_all[:TRAIN_SAMPLES]
X_test, y_test = X_test[:TEST_SAMPLES], y_test[:TEST_SAMPLES]
X_train, X_val, y_train, y_val = train_test_split(X_all, y_all, test_size=0.3,
                                                  random_state=SEED)

# truncate and pad input sequences
X_train = keras.utils.pad_sequences(X_train, maxlen=MAX_REVIEW_LENGTH)
X_val = keras.utils.pad_sequences(X_val, maxlen=MAX_REVIEW_LENGTH)
X_test = keras.utils.pad_sequences(X_test, maxlen=MAX_REVIEW_LENGTH)
print(f"train {X_train.shape}, validation {X_val.shape}, test {X_test.shape}")
print("Example:", X_train[0][-20:])

# %% [markdown]
# ## 1.2 A simple RNN model (worked example)
#
# The first layer is the Embedding layer that maps each word to a 32 length vector. Dropout
# layers before and after the recurrent layer fight overfitting, and one Dense output node with
# a sigmoid activation predicts the probability that a review is positive.

# %% tags=module task=rnn
def build_rnn_model():
    """The worked example: Embedding, Dropout, SimpleRNN(128), Dropout, Dense(1, sigmoid)."""
    model = keras.Sequential([
        keras.Input(shape=(MAX_REVIEW_LENGTH,)),
        layers.Embedding(TOP_WORDS, EMBEDDING_DIM),
        layers.Dropout(0.4),
        layers.SimpleRNN(128),
        layers.Dropout(0.4),
        layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model

# %% task=rnn
rnn_model = build_rnn_model()
rnn_model.summary()
rnn_history = rnn_model.fit(X_train, y_train, validation_data=(X_val, y_val), epochs=EPOCHS,
                            batch_size=BATCH_SIZE, verbose=2)

# %% [markdown]
# ### 1.2.1 Training curves
#
# `plot_history` draws the loss and the accuracy per epoch, for training and validation.
# (Keras 3 names the history keys `accuracy` and `val_accuracy`; Keras 2.1 said `acc`.)

# %% tags=module
def plot_history(network_history):
    """Plot loss and accuracy per epoch, training against validation."""
    history = network_history.history
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(history["loss"])
    ax_loss.plot(history["val_loss"])
    ax_loss.set(xlabel="Epochs", ylabel="Loss")
    ax_loss.legend(["Training", "Validation"])
    if "accuracy" in history:
        ax_acc.plot(history["accuracy"])
        ax_acc.plot(history["val_accuracy"])
        ax_acc.set(xlabel="Epochs", ylabel="Accuracy")
        ax_acc.legend(["Training", "Validation"], loc="lower right")
    plt.show()

# %% task=rnn
plot_history(rnn_history)

# %% [markdown]
# ### 1.2.2 Evaluation
#
# `evaluate` predicts once, in large batches (the exercise's version predicted twice with
# `batch_size=1`, and `predict_classes` no longer exists in Keras 3: a probability above 0.5
# means "positive"). It prints the metrics and plots the predicted probabilities for training
# and test reviews of each class.

# %% tags=module
def evaluate(X_test, Y_test, X_train, Y_train, model):
    """Print accuracy, precision, recall and the report; plot the probability histogram."""
    Y_pred = model.predict(X_test, batch_size=512, verbose=0).ravel()
    Y_cls = (Y_pred > 0.5).astype(int)
    eps = 1e-7
    loss = -np.mean(Y_test * np.log(Y_pred + eps) + (1 - Y_test) * np.log(1 - Y_pred + eps))
    print("Test Loss: %.4f" % loss)
    print("Accuracy: %.4f" % accuracy_score(Y_test, Y_cls))
    print("Precision: %.4f" % precision_score(Y_test, Y_cls, average="weighted", zero_division=0))
    print("Recall: %.4f" % recall_score(Y_test, Y_cls, average="weighted", zero_division=0))
    print("Classification Report:\n", classification_report(Y_test, Y_cls, zero_division=0))
    print("Confusion matrix:\n", confusion_matrix(Y_test, Y_cls))

    Y_train_pred = model.predict(X_train, batch_size=512, verbose=0).ravel()
    plt.figure(figsize=(8, 8))
    label = 1
    plt.hist(Y_train_pred[Y_train == label], alpha=0.5, color="red", range=[0, 1], bins=10)
    plt.hist(Y_train_pred[Y_train != label], alpha=0.5, color="blue", range=[0, 1], bins=10)
    plt.hist(Y_pred[Y_test == label], alpha=0.5, color="red", range=[0, 1], bins=10,
             histtype="step", linewidth=2)
    plt.hist(Y_pred[Y_test != label], alpha=0.5, color="blue", range=[0, 1], bins=10,
             histtype="step", linewidth=2)
    plt.legend(["train == 1", "train == 0", "test == 1", "test == 0"], loc="upper right")
    plt.xlabel("Probability of being a good review")
    plt.ylabel("Number of entries")
    plt.show()

# %% task=rnn
evaluate(X_test, y_test, X_train[:len(X_test)], y_train[:len(X_test)], rnn_model)

# %% [markdown]
# ## 1.3 LSTM model
#
# A LSTM network is an artificial neural network that contains LSTM blocks instead of, or in
# addition to, regular network units. A LSTM block may be described as a "smart" network unit
# that can remember a value for an arbitrary length of time.
#
# Unlike traditional RNNs, an Long short-term memory network is well-suited to learn from
# experience to classify, process and predict time series when there are very long time lags of
# unknown size between important events.
#
# Arguments beyond those of the simple RNN: `recurrent_activation` (the activation of the
# recurrent step) and `unit_forget_bias` (if True, add 1 to the bias of the forget gate at
# initialization; recommended in Jozefowicz et al.).
#
# ## 1.4 Task 1: Train and evaluate an LSTM model
#
# - Build a model using again one embedding layer and one dense output node but with an LSTM
#   layer with 128 units instead of the RNN layer
# - Use a dropout layer between the embedding and LSTM layer and between the LSTM and the dense
#   layer
# - Train the model and plot the loss and accuracy over epochs
# - Evaluate the performance of the model and compare it with the RNN model
#
# Write the model in `build_lstm_model()` (it returns the compiled model), train it as
# `lstm_model`, and keep the result of `fit` as `lstm_history`. Train with the notebook's
# parameters, `fit(..., epochs=EPOCHS, batch_size=BATCH_SIZE)`, as the worked example does: the
# grader sets them (a few epochs on part of the data, so that grading takes minutes), and a
# history with another number of epochs is reported.
#
# Because it is a binary classification problem, log loss is used as the loss function
# (`binary_crossentropy` in Keras). The efficient ADAM optimization algorithm is used. A large
# batch size of 64 reviews is used to space out weight updates.

# %% tags=module task=task1
def build_lstm_model():
    """Task 1: Embedding, Dropout, LSTM(128), Dropout, Dense(1, sigmoid)."""
    ### BEGIN SOLUTION
    model = keras.Sequential([
        keras.Input(shape=(MAX_REVIEW_LENGTH,)),
        layers.Embedding(TOP_WORDS, EMBEDDING_DIM),
        layers.Dropout(0.4),
        layers.LSTM(128),
        layers.Dropout(0.4),
        layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model
    ### END SOLUTION

# %% task=task1
# What `grade` would say about the model build_lstm_model() returns (advisory, no training)
check("task1")

# %% task=task1
### BEGIN SOLUTION
lstm_model = build_lstm_model()
lstm_model.summary()
lstm_history = lstm_model.fit(X_train, y_train, validation_data=(X_val, y_val), epochs=EPOCHS,
                              batch_size=BATCH_SIZE, verbose=2)
plot_history(lstm_history)
evaluate(X_test, y_test, X_train[:len(X_test)], y_train[:len(X_test)], lstm_model)
### END SOLUTION

# %% [markdown] task=task1 tags=answer
# **Compare the LSTM with the RNN model.** How do accuracy, training curves and training time
# differ, and why?
#
# ### BEGIN SOLUTION
# The LSTM reaches a clearly higher test accuracy than the SimpleRNN (about 0.84 against 0.64
# in the exercise), at about two and a half times the training time per epoch. Its gates let
# the gradient flow across the 500 time steps, so it learns from words far from the end of the
# review, where the SimpleRNN's gradient vanishes.
# ### END SOLUTION

# %% [markdown]
# ## 1.5 LSTM with dropout
#
# Recurrent Neural networks like LSTM generally have the problem of overfitting.
#
# Dropout can be applied between layers using the Dropout Keras layer. We have done this easily
# by adding new Dropout layers between the Embedding and LSTM layers and the LSTM and Dense
# output layers.
#
# Alternately, dropout can be applied to the input and recurrent connections of the memory units
# with the LSTM precisely and separately. Keras provides this capability with parameters on the
# LSTM layer, the `dropout` for configuring the input dropout and `recurrent_dropout` for
# configuring the recurrent dropout. For example:
#
# ```python
# layers.LSTM(128, dropout=0.2, recurrent_dropout=0.2)
# ```
#
# ## 1.6 Task 2: Train and evaluate an LSTM model with dropout
#
# - Instead of using two dropout layers, apply dropout to the input and recurrent connections of
#   the LSTM model
# - Train the model and plot the loss and accuracy over epochs
# - Evaluate the performance of the model and compare it with the previous models
#
# Write the model in `build_lstm_dropout_model()`, train it as `lstm_dropout_model` (with
# `epochs=EPOCHS, batch_size=BATCH_SIZE`) and keep the result of `fit` as `lstm_dropout_history`.

# %% tags=module task=task2
def build_lstm_dropout_model():
    """Task 2: Embedding, LSTM(128, dropout, recurrent_dropout), Dense(1, sigmoid)."""
    ### BEGIN SOLUTION
    model = keras.Sequential([
        keras.Input(shape=(MAX_REVIEW_LENGTH,)),
        layers.Embedding(TOP_WORDS, EMBEDDING_DIM),
        layers.LSTM(128, dropout=0.4, recurrent_dropout=0.4),
        layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model
    ### END SOLUTION

# %% task=task2
# What `grade` would say about the model build_lstm_dropout_model() returns (advisory, no training)
check("task2")

# %% task=task2
### BEGIN SOLUTION
lstm_dropout_model = build_lstm_dropout_model()
lstm_dropout_model.summary()
lstm_dropout_history = lstm_dropout_model.fit(X_train, y_train, validation_data=(X_val, y_val),
                                              epochs=EPOCHS, batch_size=BATCH_SIZE, verbose=2)
plot_history(lstm_dropout_history)
evaluate(X_test, y_test, X_train[:len(X_test)], y_train[:len(X_test)], lstm_dropout_model)
### END SOLUTION

# %% [markdown] task=task2 tags=answer
# **Compare with the previous models.** What does dropout on the input and recurrent
# connections change?
#
# ### BEGIN SOLUTION
# The gate-specific dropout slows convergence: after the same number of epochs the training
# accuracy is lower and closer to the validation accuracy (less overfitting), and the test
# accuracy is similar to Task 1's. Recurrent dropout also makes each epoch slower, because the
# recurrent step can no longer use the fused LSTM kernel.
# ### END SOLUTION

# %% [markdown]
# ## 1.7 Convolutional LSTM
#
# Convolutional neural networks excel at learning the spatial structure in input data.
#
# The IMDB review data does have a one-dimensional spatial structure in the sequence of words in
# reviews and the CNN may be able to pick out invariant features for good and bad sentiment.
# This learned spatial features may then be learned as sequences by an LSTM layer.
#
# We can easily add a one-dimensional CNN and max pooling layers after the Embedding layer which
# then feed the consolidated features to the LSTM. We can use a smallish set of 32 features with
# a small filter length of 3. The pooling layer can use the standard length of 2 to halve the
# feature map size.
#
# ## 1.8 Task 3: Train and evaluate an LSTM model with a convolutional layer
#
# - Add one convolutional layer and one maxpooling layer before the LSTM layer
# - Train the model and plot the loss and accuracy over epochs
# - Evaluate the performance of the model and compare it with the previous models
#
# Write the model in `build_cnn_lstm_model()`, train it as `cnn_lstm_model` (with
# `epochs=EPOCHS, batch_size=BATCH_SIZE`) and keep the result of `fit` as `cnn_lstm_history`. (Keras 3: `Conv1D` and `MaxPooling1D` are in `keras.layers`;
# `keras.layers.convolutional` no longer exists.)

# %% tags=module task=task3
def build_cnn_lstm_model():
    """Task 3: Embedding, Conv1D(32, 3), MaxPooling1D(2), LSTM(128), Dense(1, sigmoid)."""
    ### BEGIN SOLUTION
    model = keras.Sequential([
        keras.Input(shape=(MAX_REVIEW_LENGTH,)),
        layers.Embedding(TOP_WORDS, EMBEDDING_DIM),
        layers.Conv1D(filters=32, kernel_size=3, padding="same", activation="relu"),
        layers.MaxPooling1D(pool_size=2),
        layers.LSTM(128, dropout=0.4, recurrent_dropout=0.4),
        layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model
    ### END SOLUTION

# %% task=task3
# What `grade` would say about the model build_cnn_lstm_model() returns (advisory, no training)
check("task3")

# %% task=task3
### BEGIN SOLUTION
cnn_lstm_model = build_cnn_lstm_model()
cnn_lstm_model.summary()
cnn_lstm_history = cnn_lstm_model.fit(X_train, y_train, validation_data=(X_val, y_val),
                                      epochs=EPOCHS, batch_size=BATCH_SIZE, verbose=2)
plot_history(cnn_lstm_history)
evaluate(X_test, y_test, X_train[:len(X_test)], y_train[:len(X_test)], cnn_lstm_model)
### END SOLUTION

# %% [markdown] task=task3 tags=answer
# **Compare with the previous models.** What does the convolutional layer bring?
#
# ### BEGIN SOLUTION
# The Conv1D + MaxPooling1D front end halves the sequence the LSTM has to run over (250 steps
# instead of 500), so an epoch is faster, and the convolution picks up local word patterns
# ("not good", "waste of"). With only 3,104 more parameters it reaches the best test accuracy
# of the three (0.86 in the exercise).
# ### END SOLUTION

# %% [markdown]
# ## 1.9 Bonus: LSTM with convolutional input & recurrent transformation
#
# Convolutional LSTM Network: A Machine Learning Approach for Precipitation Nowcasting.
# Based on https://github.com/keras-team/keras/blob/master/examples/conv_lstm.py, this network
# is used to predict the next frame of an artificially generated movie which contains moving
# squares.
#
# **Artificial data generation.** Generate movies with 3 to 7 moving squares inside. The
# squares are of shape 1x1 or 2x2 pixels, which move linearly over time. For convenience we
# first create movies with bigger width and height (80x80) and at the end we select a 40x40
# window.

# %% tags=module task=bonus
def generate_movies(n_samples=1200, n_frames=15):
    """Noisy movies of moving squares, and the same movies shifted one frame ahead."""
    row = 80
    col = 80
    noisy_movies = np.zeros((n_samples, n_frames, row, col, 1), dtype=np.float32)
    shifted_movies = np.zeros((n_samples, n_frames, row, col, 1), dtype=np.float32)

    for i in range(n_samples):
        # Add 3 to 7 moving squares
        n = np.random.randint(3, 8)

        for j in range(n):
            # Initial position
            xstart = np.random.randint(20, 60)
            ystart = np.random.randint(20, 60)
            # Direction of motion
            directionx = np.random.randint(0, 3) - 1
            directiony = np.random.randint(0, 3) - 1

            # Size of the square
            w = np.random.randint(2, 4)

            for t in range(n_frames):
                x_shift = xstart + directionx * t
                y_shift = ystart + directiony * t
                noisy_movies[i, t, x_shift - w: x_shift + w, y_shift - w: y_shift + w, 0] += 1

                # Make it more robust by adding noise. The idea is that if during inference,
                # the value of the pixel is not exactly one, we need to train the network to
                # be robust and still consider it as a pixel belonging to a square.
                if np.random.randint(0, 2):
                    noise_f = (-1) ** np.random.randint(0, 2)
                    noisy_movies[i, t, x_shift - w - 1: x_shift + w + 1,
                                 y_shift - w - 1: y_shift + w + 1, 0] += noise_f * 0.1

                # Shift the ground truth by 1
                x_shift = xstart + directionx * (t + 1)
                y_shift = ystart + directiony * (t + 1)
                shifted_movies[i, t, x_shift - w: x_shift + w, y_shift - w: y_shift + w, 0] += 1

    # Cut to a 40x40 window
    noisy_movies = noisy_movies[::, ::, 20:60, 20:60, ::]
    shifted_movies = shifted_movies[::, ::, 20:60, 20:60, ::]
    # Keep every pixel in [0, 1] (the noise may push the background below 0)
    np.clip(noisy_movies, 0, 1, out=noisy_movies)
    np.clip(shifted_movies, 0, 1, out=shifted_movies)
    return noisy_movies, shifted_movies

# %% [markdown]
# ### 1.9.1 Model
#
# We create a layer which takes as input movies of shape `(n_frames, width, height, channels)`
# and returns a movie of identical shape: four `ConvLSTM2D` layers with 40 filters of 3x3, each
# followed by batch normalization, and a `Conv3D` with one filter and a sigmoid activation.
#
# Write it in `build_convlstm_model()`. Keras 3: the layers are `keras.layers.ConvLSTM2D`,
# `Conv3D` and `BatchNormalization`; `optimizer='adadelta'` now means a learning rate of 0.001
# (Keras 2 used 1.0): pass `keras.optimizers.Adadelta(learning_rate=1.0)` or the model barely
# trains.

# %% tags=module task=bonus
def build_convlstm_model():
    """Bonus: four ConvLSTM2D(40, 3x3) with BatchNormalization, then Conv3D(1, sigmoid)."""
    ### BEGIN SOLUTION
    model = keras.Sequential([keras.Input(shape=(None, 40, 40, 1))])
    for _ in range(4):
        model.add(layers.ConvLSTM2D(filters=40, kernel_size=(3, 3), padding="same",
                                    return_sequences=True))
        model.add(layers.BatchNormalization())
    model.add(layers.Conv3D(filters=1, kernel_size=(3, 3, 3), activation="sigmoid",
                            padding="same", data_format="channels_last"))
    model.compile(loss="binary_crossentropy",
                  optimizer=keras.optimizers.Adadelta(learning_rate=1.0))
    return model
    ### END SOLUTION

# %% task=bonus
# What `grade` would say about the model build_convlstm_model() returns (advisory, no training)
check("bonus")

# %% [markdown]
# ### 1.9.2 Train the network
#
# Beware: this takes time (about 1.3 s per movie and epoch on two CPU cores). The last sixth of
# the movies is kept aside to test the network. Train `convlstm_model` (the model
# `build_convlstm_model()` returns) with `epochs=MOVIE_EPOCHS` and keep the result of `fit` as
# `convlstm_history`: the grader sets the number of movies and epochs.

# %% task=bonus
### BEGIN SOLUTION
noisy_movies, shifted_movies = generate_movies(n_samples=MOVIE_SAMPLES, n_frames=MOVIE_FRAMES)
n_train = MOVIE_SAMPLES * 5 // 6
convlstm_model = build_convlstm_model()
convlstm_model.summary()
convlstm_history = convlstm_model.fit(noisy_movies[:n_train], shifted_movies[:n_train],
                                      batch_size=10, epochs=MOVIE_EPOCHS, validation_split=0.05,
                                      verbose=2)
### END SOLUTION

# %% [markdown]
# ### 1.9.3 Test the network
#
# Feed the network with the first 7 frames of a movie it has not seen, then let it predict the
# following frames one at a time from its own predictions, and compare with the ground truth.

# %% task=bonus
which = MOVIE_SAMPLES - 1
track = noisy_movies[which][:7]
for _ in range(MOVIE_FRAMES - 7):
    new_pos = convlstm_model.predict(track[np.newaxis], verbose=0)
    track = np.concatenate((track, new_pos[0, -1:]), axis=0)

fig, axes = plt.subplots(2, MOVIE_FRAMES, figsize=(MOVIE_FRAMES * 1.2, 2.8))
for t in range(MOVIE_FRAMES):
    axes[0, t].imshow(track[t, :, :, 0])
    axes[0, t].set_title("pred" if t >= 7 else "input", fontsize=8)
    axes[1, t].imshow(noisy_movies[which][t, :, :, 0])
    for ax in axes[:, t]:
        ax.axis("off")
plt.show()
