"""The words of the exercises' explanations, per language (en, ja), as data: ``render`` fills them in."""

SYMBOLS = {
    "en": dict(delta="delta", eta="eta", sigma="sigma", times=" * ", dE="dE/d", arrow="<-", to="->"),
    "ja": dict(delta="δ", eta="η", sigma="σ", times=" × ", dE="∂E/∂", arrow="←", to="→"),
}


TEXT = {
    "en": {
        "title1": "Exercise 1 (tutorial section 7.1): backpropagation by hand in a simple 2-layer network",
        "network1": (
            "Network: input layer 1 unit (x); hidden layer 2 units (h1, h2), ReLU;\noutput layer 1 unit (y), identity."
        ),
        "title2": "Exercise 2 (tutorial section 7.2): backpropagation on the XOR problem",
        "network2": (
            "Network: input layer 2 units (x_1, x_2); hidden layer 2 units (h1, h2), sigmoid;\n"
            "output layer 1 unit (y), sigmoid."
        ),
        "notation": (
            "Notation as in the tutorial: layer 0 is the input, layer 1 the hidden layer, layer 2 the output.\n"
            "w_ij^(l) is the weight from unit i of layer l-1 to unit j of layer l, b_j^(l) the bias of unit j\n"
            "of layer l, z_j^(l) its weighted sum and y_j^(l) = f(z_j^(l)) its output;\n"
            "h1 = y_1^(1), h2 = y_2^(1) and y = y^(2)."
        ),
        "initial": "Initial values:",
        "note1": (
            "The tutorial's weights for this exercise are illegible in the source. fastbp uses these so that,\n"
            "for x = 1, h1 is active (z_1^(1) = 0.5 > 0) and h2 is not (z_2^(1) = -0.3 <= 0): both cases of the\n"
            "ReLU derivative appear. The input, biases, target and learning rate are the tutorial's.\n"
            "Try your own with --w1, --w2, --b1, --b2, --x, --d, --lr (see fastbp exercise 1 --help)."
        ),
        "note2": (
            "The weights and the input are the tutorial's. It gives no biases and no learning rate: fastbp\n"
            "takes the biases as 0 (as in exercise 1) and eta = 0.5.\n"
            "Try your own with --w1, --w2, --b1, --b2, --x, --d, --lr (see fastbp exercise 2 --help)."
        ),
        "custom": (
            "Given on the command line: {names}; the other values are fastbp's defaults\n"
            "(see fastbp exercise {number} --help)."
        ),
        "ex2a": (
            "(a) Why a single-layer perceptron (no hidden layer) cannot solve XOR is a figure:\n"
            "    fastbp plot xor-boundary -o xor.png"
        ),
        "ex2b": "(b) One learning step for the input ({x}) -> target {d}.",
        "ex2c": (
            "(c) What happens if only the output layer learns (no backpropagation into the hidden layer):\n"
            "    fastbp experiment frozen-hidden"
        ),
        "forward": (
            "Forward pass: each unit adds up its inputs times their weights, plus its bias,\n"
            "z_j^(l) = sum_i w_ij^(l) y_i^(l-1) + b_j^(l), then applies its activation: y_j^(l) = f(z_j^(l))."
        ),
        "forward_relu": "Hidden units: ReLU(z) = max(0, z). Output unit: the identity, y = z^(2).",
        "forward_sigmoid": "Hidden and output units: the sigmoid, sigma(z) = 1 / (1 + e^-z).",
        "error": "Error: E = 1/2 (y - d)^2, half the squared difference between the output y and the target d.",
        "out_delta": "Output error term: delta^(2) = dE/dz^(2) = (y - d) f'(z^(2)).",
        "out_delta_identity": "The output is the identity, f' = 1, so delta^(2) = y - d (tutorial section 4.1.2).",
        "out_delta_sigmoid": (
            "The tutorial derives it for an identity output (f' = 1, section 4.1.2). Here the output is a\n"
            "sigmoid, so the factor stays: sigma'(z) = sigma(z) (1 - sigma(z)) = y (1 - y)."
        ),
        "hidden_delta": (
            "Hidden error terms: delta_j^(1) = (sum_k delta_k^(2) w_jk^(2)) f'(z_j^(1)) (tutorial section 4.2.2).\n"
            "There is one output unit, so the sum is the single term delta^(2) w_j1^(2): the output's error\n"
            "flows back along the weight that leaves h_j, and is multiplied by the slope of h_j's activation,\n"
            "{slope}"
        ),
        "hidden_delta_relu": "ReLU'(z) = 1 if z > 0, else 0.",
        "hidden_delta_sigmoid": "sigma'(z_j^(1)) = y_j^(1) (1 - y_j^(1)).",
        "gradients": (
            "Gradients: dE/dw_ij^(l) = delta_j^(l) y_i^(l-1), the error term of the unit the weight leads to\n"
            "times the value that flows along the weight; dE/db_j^(l) = delta_j^(l) (tutorial 4.1, 4.2, 4.3)."
        ),
        "update": "Updated weights and biases: w <- w - eta dE/dw and b <- b - eta dE/db, with eta = {lr}.",
        "relu_dead": (
            "h{j} is inactive (z_{j}^(1) = {z} <= 0), so ReLU'(z_{j}^(1)) = 0: no error reaches h{j}, and its\n"
            "incoming weight and bias get zero gradient, so they do not change."
        ),
        "zero_input": (
            "x_{i} = 0, so the weights that leave x_{i} get zero gradient (dE/dw_{i}j^(1) = delta_j^(1) x_{i} = 0)\n"
            "and keep their values."
        ),
        "symmetric_before": (
            "h1 and h2 started with the same incoming weights, bias and outgoing weight, so they computed the\n"
            "same output, received the same error term and the same gradients. After the step they are still\n"
            "identical:"
        ),
        "symmetric_after": (
            "This holds after every step: from a symmetric start, gradient descent can never make the two\n"
            "hidden units differ, so the network acts as if it had a single hidden unit, which cannot represent\n"
            "XOR. That is why networks start from random weights; (c) asks what training can do from there."
        ),
        "check": "Check: a forward pass with the updated weights gives",
        "before": "(before the step: {v})",
        "after_down": "One step moved y towards d = {d} and lowered the error E.",
        "after_up": "The error went up: this learning rate is too large for this step.",
        "footer": (
            "Every number above was computed by fastbp's numba kernels (Network.trace) and matches the\n"
            "pure-Python reference (fastbp.reference.backward and .step) to within {tol:g}:\n"
            "largest difference {diff:.3g}."
        ),
        "mismatch": (
            "WARNING: fastbp's kernels and the pure-Python reference DISAGREE by {diff:.3g} (more than {tol:g})\n"
            "on {name}: kernels {a}, reference {b}.\n"
            "The numbers printed above cannot be trusted. This is a bug in fastbp: please report it."
        ),
        "parts1": ("(a)", "(b)", "(c)", "(d)", "(e)", "(f)"),
        "parts2": ("(1)", "(2)", "(3)", "(4)", "(5)", "(6)"),
    },
    "ja": {
        "title1": "問題 1(チュートリアル 7.1 節):シンプルな 2 層ネットワークでの誤差逆伝播法の手計算",
        "network1": (
            "ネットワーク構造:入力層 1 ニューロン (x)、隠れ層 2 ニューロン (h1, h2、ReLU)、\n"
            "出力層 1 ニューロン (y、恒等関数)"
        ),
        "title2": "問題 2(チュートリアル 7.2 節):XOR 問題における誤差逆伝播法",
        "network2": (
            "ネットワーク構造:入力層 2 ニューロン (x_1, x_2)、隠れ層 2 ニューロン (h1, h2、シグモイド)、\n"
            "出力層 1 ニューロン (y、シグモイド)"
        ),
        "notation": (
            "記号はチュートリアルと同じ。0 層目が入力層、1 層目が隠れ層、2 層目が出力層。\n"
            "w_ij^(l) は l-1 層目の i 番目のニューロンから l 層目の j 番目のニューロンへの重み、\n"
            "b_j^(l) は l 層目の j 番目のニューロンへのバイアス、z_j^(l) は活性化関数適用前の入力\n"
            "(重み付き線形和)、y_j^(l) = f(z_j^(l)) は活性化関数適用後の出力。\n"
            "h1 = y_1^(1)、h2 = y_2^(1)、y = y^(2) である。"
        ),
        "initial": "初期値:",
        "note1": (
            "原文の初期重みは判読できないため、fastbp ではこの値を選んだ。x = 1 のとき h1 は活性\n"
            "(z_1^(1) = 0.5 > 0)、h2 は非活性 (z_2^(1) = -0.3 ≤ 0) となり、ReLU の導関数の両方の場合が現れる。\n"
            "入力・バイアス・教師データ・学習率はチュートリアルの値。\n"
            "--w1, --w2, --b1, --b2, --x, --d, --lr で自分の値を試せる(fastbp exercise 1 --help を参照)。"
        ),
        "note2": (
            "重みと入力はチュートリアルの値。バイアスと学習率は書かれていないため、fastbp ではバイアスを\n"
            "0(問題 1 と同じ)、η = 0.5 とした。\n"
            "--w1, --w2, --b1, --b2, --x, --d, --lr で自分の値を試せる(fastbp exercise 2 --help を参照)。"
        ),
        "custom": (
            "コマンドラインで指定した値:{names}。それ以外は fastbp の既定値\n(fastbp exercise {number} --help を参照)。"
        ),
        "ex2a": (
            "(a) 単層パーセプトロン(隠れ層なし)で XOR 問題が解けない理由は図で示す:\n"
            "    fastbp plot xor-boundary -o xor.png"
        ),
        "ex2b": "(b) 入力 ({x}) → 出力 {d} の学習を 1 ステップ実行する。",
        "ex2c": (
            "(c) 誤差逆伝播法なしで(出力層の重みのみを更新して)学習するとどうなるか:\n"
            "    fastbp experiment frozen-hidden"
        ),
        "forward": (
            "順伝播:各ニューロンは入力と重みの積の和にバイアスを加えて\n"
            "z_j^(l) = Σ_i w_ij^(l) y_i^(l-1) + b_j^(l) を求め、活性化関数を通して y_j^(l) = f(z_j^(l)) を出力する。"
        ),
        "forward_relu": "隠れ層は ReLU(z) = max(0, z)、出力層は恒等関数 y = z^(2)。",
        "forward_sigmoid": "隠れ層も出力層もシグモイド関数 σ(z) = 1 / (1 + e^-z)。",
        "error": "誤差:E = 1/2 (y - d)^2(出力 y と教師データ d の差の二乗の半分)。",
        "out_delta": "出力層の誤差項:δ^(2) = ∂E/∂z^(2) = (y - d) f'(z^(2))。",
        "out_delta_identity": "出力層は恒等関数で f' = 1 なので δ^(2) = y - d(4.1.2 節)。",
        "out_delta_sigmoid": (
            "チュートリアルは出力層が恒等関数 (f' = 1) の場合を導出している(4.1.2 節)。ここでは出力層が\n"
            "シグモイドなので係数が残る:σ'(z) = σ(z)(1 - σ(z)) = y (1 - y)。"
        ),
        "hidden_delta": (
            "隠れ層の誤差項:δ_j^(1) = (Σ_k δ_k^(2) w_jk^(2)) f'(z_j^(1))(4.2.2 節)。\n"
            "出力ニューロンは 1 つなので和は δ^(2) w_j1^(2) の 1 項だけ。出力の誤差が h_j から出る重みを\n"
            "通って逆向きに伝わり、h_j の活性化関数の傾きが掛かる。{slope}"
        ),
        "hidden_delta_relu": "ReLU'(z) は z > 0 なら 1、それ以外は 0。",
        "hidden_delta_sigmoid": "σ'(z_j^(1)) = y_j^(1) (1 - y_j^(1))。",
        "gradients": (
            "各重みの勾配:∂E/∂w_ij^(l) = δ_j^(l) y_i^(l-1)(重みの行き先のニューロンの誤差項 × その重みを\n"
            "流れる値)、∂E/∂b_j^(l) = δ_j^(l)(4.1 節、4.2 節、4.3 節)。"
        ),
        "update": "更新後の重みとバイアス:w ← w - η ∂E/∂w、b ← b - η ∂E/∂b(学習率 η = {lr})。",
        "relu_dead": (
            "h{j} は非活性 (z_{j}^(1) = {z} ≤ 0) なので ReLU'(z_{j}^(1)) = 0。誤差は h{j} に届かず、\n"
            "h{j} に入る重みとバイアスの勾配は 0 で、値は変わらない。"
        ),
        "zero_input": (
            "x_{i} = 0 なので、x_{i} から出る重みの勾配は 0 (∂E/∂w_{i}j^(1) = δ_j^(1) x_{i} = 0) で、\n値は変わらない。"
        ),
        "symmetric_before": (
            "h1 と h2 は入る重み・バイアス・出る重みがすべて同じ状態から始まったので、出力も誤差項も勾配も\n"
            "同じになり、更新後も同一のまま:"
        ),
        "symmetric_after": (
            "これは何ステップ学習しても変わらない。対称な初期値からは勾配降下法で 2 つの隠れニューロンを\n"
            "区別できず、ネットワークは隠れニューロンが 1 つしかないのと同じになり、XOR を表現できない。\n"
            "重みを乱数で初期化するのはこのため。そこから何が学習できるかを問うのが (c) である。"
        ),
        "check": "確認:更新後の重みでもう一度順伝播すると",
        "before": "(更新前:{v})",
        "after_down": "1 ステップで y が d = {d} に近づき、誤差 E が減った。",
        "after_up": "誤差が増えた:このステップには学習率が大きすぎる。",
        "footer": (
            "上の数値はすべて fastbp の numba カーネル (Network.trace) で計算し、純 Python の参照実装\n"
            "(fastbp.reference.backward と .step) と {tol:g} 以内で一致することを確認した(最大の差:{diff:.3g})。"
        ),
        "mismatch": (
            "警告:fastbp のカーネルと純 Python の参照実装の結果が {diff:.3g} 食い違っている({tol:g} を超える)。\n"
            "{name}:カーネル {a}、参照実装 {b}。\n"
            "上に表示した数値は信頼できない。fastbp のバグなので報告してほしい。"
        ),
        "parts1": ("(a)", "(b)", "(c)", "(d)", "(e)", "(f)"),
        "parts2": ("(1)", "(2)", "(3)", "(4)", "(5)", "(6)"),
    },
}
