"""serving/server/status.py: TensorFlow's error messages cleaned, TF Serving's truncation."""

from serving import server as srv


def test_error_messages_are_cleaned_and_truncated():
    graph = ("Graph execution error:\n\nDetected at node Assert defined at (most recent call last):\n"
             "<stack traces unavailable>\nassertion failed: [empty caption]\n"
             "\t [[{{node Assert}}]] [Op:__inference_signature_wrapper_1]")
    assert srv.clean_tf_message(graph) == "assertion failed: [empty caption]"
    assert srv.clean_tf_message(
        "{{function_node __inference_f_1}} bad input [Op:X]") == "bad input"
    # An exported t2i graph's own checks come back in words (as the export writes them).
    empty = ("assertion failed: [t2i: empty caption: every caption needs at least one word; token "
             "counts per caption] [Condition x > y did not hold element-wise:] [x (sub:0) = ] [4 0] "
             "[y (Const_1:0) = ] [0]")
    assert srv.clean_tf_message(empty) == ("t2i: empty caption: every caption needs at least one "
                                           "word; token counts per caption: 4 0")
    assert srv.clean_tf_message("assertion failed: [t2i: captions and seed must have the same batch "
                                "size]") == "t2i: captions and seed must have the same batch size"
    assert srv.truncate_message("x" * 1030) == "x" * 1024 + "...TRUNCATED"
    assert srv.truncate_message("short") == "short"
